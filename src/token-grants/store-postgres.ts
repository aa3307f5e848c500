/** The enrollment token store on PostgreSQL (see store.ts). */
import type { PostgresDatabase } from '../db/postgres/database.js';
import type { PgFunctionStep, PgQueryable } from '../db/unit-of-work.js';
import {
  decideEnrolment,
  type EnrolClaim,
  type EnrolOutcome,
  type TokenGrantStore,
} from './store.js';

/**
 * Class of the transaction-scoped advisory lock taken per enrollment token (two-key form, so it
 * cannot meet the migrations' one-key lock): replicas enrolling with one token count one at a
 * time, so `uses=N` is never exceeded. Held only by registrations of enrollment tokens.
 */
const TOKEN_LOCK_CLASS = 0x7a7465;

async function time(c: PgQueryable, sql: string, values: unknown[]): Promise<number | undefined> {
  const { rows } = await c.query(sql, values);
  const row = rows[0] as { t: string | number } | undefined;
  return row === undefined ? undefined : Number(row.t);
}

export class PostgresTokenGrantStore implements TokenGrantStore {
  constructor(private readonly db: PostgresDatabase) {}

  /**
   * A function step (a few round trips), taken only by registrations with an enrollment token;
   * every other registration keeps its single round trip.
   */
  enrolStep(claim: EnrolClaim): PgFunctionStep<EnrolOutcome> {
    return {
      engine: 'postgres',
      run: async (c) => {
        await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
          TOKEN_LOCK_CLASS,
          claim.token,
        ]);
        const state = {
          firstSeen: await time(c, 'SELECT first_seen AS t FROM devices WHERE id = $1', [
            claim.deviceId,
          ]),
          enrolledAt: await time(
            c,
            'SELECT enrolled_at AS t FROM token_enrollments WHERE token = $1 AND device_id = $2',
            [claim.token, claim.deviceId],
          ),
        };
        let used = 0;
        if (state.firstSeen === undefined && state.enrolledAt === undefined)
          used = (await time(c, USES, [claim.token])) ?? 0;
        const outcome = decideEnrolment(state, claim, () => used);
        if (outcome === 'enrolled')
          await c.query(
            'INSERT INTO token_enrollments (token, device_id, token_name, enrolled_at) VALUES ($1, $2, $3, $4)',
            [claim.token, claim.deviceId, claim.name, claim.at],
          );
        else if (outcome === 'recreated')
          await c.query(
            'UPDATE token_enrollments SET enrolled_at = $1 WHERE token = $2 AND device_id = $3',
            [claim.at, claim.token, claim.deviceId],
          );
        return outcome;
      },
    };
  }

  async uses(token: string): Promise<number> {
    const { rows } = await this.db.query<{ t: string }>(USES, [token]);
    return Number(rows[0]?.t ?? 0);
  }
}

const USES = 'SELECT count(*) AS t FROM token_enrollments WHERE token = $1';
