/**
 * The scope of a restricted device token, enforced on every registration it makes (the
 * registration URL and a bootstrap fetch that registers): a bound token registers only its
 * device; an enrollment token's registration carries a step into the registration's transaction
 * (store.ts). Plugged into DeviceService as its RegistrationAdmission by server.ts.
 */
import type { Step } from '../db/unit-of-work.js';
import type { RegistrationAdmission } from '../devices/service.js';
import { ZtpError } from '../errors.js';
import type { DeviceScope } from '../http/auth.js';
import type { TokenGrantStore } from './store.js';

/** Which device a (canonical) id names: its primary id, or undefined when none is known. */
export type DeviceOf = (id: string) => Promise<string | undefined>;

/**
 * An id names only itself. The one seam for device aliases (issue 18): point the admission at
 * the device service's alias resolution, and a token bound to an alias accepts the device's
 * primary id and its other aliases (and one bound to the primary id, its aliases).
 */
export const idNamesItself: DeviceOf = (id) => Promise.resolve(id);

export class TokenAdmission implements RegistrationAdmission {
  constructor(
    private readonly enrollments: TokenGrantStore,
    private readonly deviceOf: DeviceOf = idNamesItself,
  ) {}

  async admit(scope: DeviceScope, id: string, at: number): Promise<Step<unknown> | undefined> {
    if (scope.kind === 'bound') {
      await this.checkBound(scope, id);
      return undefined;
    }
    return this.enrollments.enrolStep({
      token: scope.token,
      name: scope.name,
      deviceId: id,
      at,
      maxUses: scope.maxUses,
    });
  }

  private async checkBound(scope: Extract<DeviceScope, { kind: 'bound' }>, id: string) {
    if (id === scope.id) return;
    const [wanted, asked] = await Promise.all([this.deviceOf(scope.id), this.deviceOf(id)]);
    if (wanted !== undefined && wanted === asked) return;
    throw new ZtpError(
      'token_not_for_device',
      `token '${scope.name}' is bound to device '${scope.id}' and cannot register '${id}'`,
      { id },
    );
  }
}
