/** The enrollment feature's domain errors (codes mapped to statuses in http/problem.ts). */
import { ZtpError } from '../errors.js';

/** allowlist mode: the device was not created by an admin and no rule accepts it. */
export class NotEnrolledError extends ZtpError {
  constructor(id: string) {
    super(
      'not_enrolled',
      `device '${id}' is not enrolled: an admin must create it first (PUT /ztp/mng/{id} or ztp import --csv)`,
      { id },
    );
  }
}

export class DeviceRejectedError extends ZtpError {
  constructor(id: string) {
    super(
      'device_rejected',
      `device '${id}' was rejected by an admin; its registrations are refused`,
      {
        id,
      },
    );
  }
}

/** GET /ztp/check/{id} of a device that waits for approval. */
export class DevicePendingError extends ZtpError {
  constructor(id: string) {
    super('device_pending', `device '${id}' is waiting for an admin's approval`, { id });
  }
}

export class NotPendingError extends ZtpError {
  constructor(id: string) {
    super('device_not_pending', `device '${id}' is not waiting for approval`, { id });
  }
}

export class AlreadyRejectedError extends ZtpError {
  constructor(id: string) {
    super('already_rejected', `device '${id}' is already rejected`, { id });
  }
}

export class NotRejectedError extends ZtpError {
  constructor(id: string) {
    super('device_not_rejected', `device '${id}' is not rejected`, { id });
  }
}
