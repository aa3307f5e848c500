/** The enrollment token store on SQLite (see store.ts); statements through the database's cache. */
import type { SqliteDatabase } from '../db/sqlite/database.js';
import type { Step } from '../db/unit-of-work.js';
import {
  decideEnrolment,
  type EnrolClaim,
  type EnrolOutcome,
  type TokenGrantStore,
} from './store.js';

// The device table is read, never written: whether the id exists and since when.
const FIRST_SEEN = 'SELECT first_seen AS t FROM devices WHERE id = ?';
const ENROLLED_AT =
  'SELECT enrolled_at AS t FROM token_enrollments WHERE token = ? AND device_id = ?';
const USES = 'SELECT count(*) AS n FROM token_enrollments WHERE token = ?';
const INSERT =
  'INSERT INTO token_enrollments (token, device_id, token_name, enrolled_at) VALUES (?, ?, ?, ?)';
const RECREATED = 'UPDATE token_enrollments SET enrolled_at = ? WHERE token = ? AND device_id = ?';

export class SqliteTokenGrantStore implements TokenGrantStore {
  constructor(private readonly db: SqliteDatabase) {}

  enrolStep(claim: EnrolClaim): Step<EnrolOutcome> {
    // One writer: nothing else runs between the reads and the write.
    return this.db.step(() => {
      const time = (sql: string, ...args: string[]) => {
        const row = this.db.statement<{ t: number | bigint }>(sql).get(...args);
        return row === undefined ? undefined : Number(row.t);
      };
      const state = {
        firstSeen: time(FIRST_SEEN, claim.deviceId),
        enrolledAt: time(ENROLLED_AT, claim.token, claim.deviceId),
      };
      const outcome = decideEnrolment(
        state,
        claim,
        () => this.db.statement<{ n: number }>(USES).get(claim.token)!.n,
      );
      if (outcome === 'enrolled')
        this.db.statement(INSERT).run(claim.token, claim.deviceId, claim.name, claim.at);
      else if (outcome === 'recreated')
        this.db.statement(RECREATED).run(claim.at, claim.token, claim.deviceId);
      return outcome;
    });
  }

  uses(token: string): Promise<number> {
    return this.db.read(() => this.db.statement<{ n: number }>(USES).get(token)!.n);
  }
}
