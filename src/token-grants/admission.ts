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

/**
 * Which device a (canonical) id or alias names: its primary id, or undefined when no device is
 * known by it.
 */
export type DeviceOf = (idOrAlias: string) => Promise<string | undefined>;

/**
 * An id names only itself (tests, and a server built without a registry to ask). The server
 * gives the device store's alias resolution instead (server.ts), so that a token bound to an
 * alias accepts the device's primary id and its other aliases, and one bound to the primary id
 * its aliases.
 */
export const idNamesItself: DeviceOf = (id) => Promise.resolve(id);

export class TokenAdmission implements RegistrationAdmission {
  constructor(
    private readonly enrollments: TokenGrantStore,
    private readonly deviceOf: DeviceOf = idNamesItself,
  ) {}

  async admit(
    scope: DeviceScope,
    id: string,
    at: number,
    claimed: readonly string[] = [],
  ): Promise<Step<unknown> | undefined> {
    if (scope.kind === 'bound') {
      await this.checkBound(scope, id, claimed);
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

  /**
   * `id`: the device registering (its primary id, or the id it registers by when it is not
   * known); `claimed`: the aliases its registration carries. The bound value must name that
   * device: be its primary id or one of its aliases; or, while no device is known by the bound
   * value nor by `id`, be one of the aliases this first registration brings.
   */
  private async checkBound(
    scope: Extract<DeviceScope, { kind: 'bound' }>,
    id: string,
    claimed: readonly string[],
  ) {
    if (id === scope.id) return;
    const wanted = await this.deviceOf(scope.id);
    if (wanted !== undefined && wanted === id) return;
    if (
      wanted === undefined &&
      claimed.includes(scope.id) &&
      (await this.deviceOf(id)) === undefined
    )
      return;
    throw new ZtpError(
      'token_not_for_device',
      `token '${scope.name}' is bound to device '${scope.id}' and cannot register '${id}'`,
      { id },
    );
  }
}
