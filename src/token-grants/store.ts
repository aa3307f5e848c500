/**
 * Enrollment tokens' use counter: which device each enrollment token enrolled, one row per
 * (token, device), so a token's uses are its rows and a device's owner is on record. The check
 * and the count are a step of the registration's transaction (db/unit-of-work.ts), ahead of the
 * device's upsert: a registration either enrols and counts, or neither.
 *
 * A device belongs to token T while its row says T enrolled it at the device's `first_seen`:
 * the enrolling registration writes both with the same time. A device deleted and created again
 * by anyone else has a new `first_seen`, so T cannot move it; T may create its own deleted
 * device again without spending a use.
 */
import type { Step } from '../db/unit-of-work.js';
import { ZtpError } from '../errors.js';

export interface EnrolClaim {
  /** SHA-256 (hex) of the enrollment token: its key (names may be reused by a new token). */
  token: string;
  /** The token's name, for messages and for reading the table. */
  name: string;
  deviceId: string;
  at: number;
  /** undefined: no limit. */
  maxUses: number | undefined;
}

/** What a step found: `own` a device this token enrolled; `recreated` its deleted device; `enrolled` a new one. */
export type EnrolOutcome = 'own' | 'recreated' | 'enrolled';

export interface EnrolmentState {
  /** The device's first_seen, undefined when no such device exists. */
  firstSeen: number | undefined;
  /** When this token enrolled this id, undefined when it never did. */
  enrolledAt: number | undefined;
}

export interface TokenGrantStore {
  /** Refuses (throws a ZtpError) or records the registration as this token's; see the top. */
  enrolStep(claim: EnrolClaim): Step<EnrolOutcome>;
  /** How many devices the token has enrolled (its uses). */
  uses(token: string): Promise<number>;
}

export class TokenUsedUpError extends ZtpError {
  constructor(claim: EnrolClaim, used: number) {
    super(
      'token_used_up',
      `enrollment token '${claim.name}' has enrolled ${used} of its ${claim.maxUses ?? used} devices; it still registers those, but enrols no new one`,
      { id: claim.deviceId, uses: used },
    );
  }
}

export function notEnrolledByToken(claim: EnrolClaim): ZtpError {
  return new ZtpError(
    'token_not_for_device',
    `enrollment token '${claim.name}' registers only the devices it enrolled; '${claim.deviceId}' exists and was not enrolled by it`,
    { id: claim.deviceId },
  );
}

/**
 * The rule, shared by the engines: `used` is asked only when a new device would be enrolled.
 * Throws the refusal; returns what the step must write.
 */
export function decideEnrolment(
  state: EnrolmentState,
  claim: EnrolClaim,
  used: () => number,
): EnrolOutcome {
  if (state.firstSeen !== undefined) {
    if (state.enrolledAt === state.firstSeen) return 'own';
    throw notEnrolledByToken(claim);
  }
  if (state.enrolledAt !== undefined) return 'recreated';
  const n = used();
  if (claim.maxUses !== undefined && n >= claim.maxUses) throw new TokenUsedUpError(claim, n);
  return 'enrolled';
}
