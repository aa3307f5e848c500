/**
 * The device routes' request schemas (TypeBox): the same objects validate requests and produce
 * the OpenAPI document at /openapi.json.
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  ALIAS_TYPES,
  ALIASES_PER_DEVICE_MAX,
  ID_MAX_LENGTH,
  NAME_MAX_LENGTH,
} from '../devices/identity.js';

/** An alias as requests carry it; type and value are checked by the service (stable codes). */
export const AliasBody = Type.Object({
  type: Type.String({ description: `One of ${ALIAS_TYPES.join(', ')}`, maxLength: 64 }),
  value: Type.String({
    description: 'A MAC (any common notation) or 1-128 characters of [A-Za-z0-9._:-]',
    maxLength: 256,
  }),
});
export type AliasBody = Static<typeof AliasBody>;

const Aliases = Type.Array(AliasBody, {
  description: `Added to the device's aliases (never removed by a registration); at most ${ALIASES_PER_DEVICE_MAX} per device`,
});

export const AliasParams = Type.Object({
  id: Type.String({ maxLength: 256 }),
  type: Type.String({ maxLength: 64 }),
  value: Type.String({ maxLength: 256 }),
});

export const IdParams = Type.Object({
  id: Type.String({
    description:
      'Device id: a MAC address (any common notation) or 1-128 characters of [A-Za-z0-9._:-]',
    maxLength: 256,
  }),
});

/** Body of a registration: every member optional (ip defaults to the request source address). */
export const RegisterBody = Type.Object(
  {
    ip: Type.Optional(
      Type.String({
        description: 'IPv4 or IPv6; omitted: the request source address',
        maxLength: 64,
      }),
    ),
    name: Type.Optional(
      Type.String({ maxLength: NAME_MAX_LENGTH, description: 'Omitted: the stored name stays' }),
    ),
    userdata: Type.Optional(
      Type.String({ description: 'Free text up to 64 KiB; omitted: the stored userdata stays' }),
    ),
    aliases: Type.Optional(Aliases),
  },
  { description: 'Unknown members are ignored.' },
);
export type RegisterBody = Static<typeof RegisterBody>;

const Pinned = Type.Object(
  { name: Type.Optional(Type.Boolean()), userdata: Type.Optional(Type.Boolean()) },
  { description: 'Pin (true) or unpin (false) a field: registrations do not change a pinned one' },
);

export const EditBody = Type.Object(
  {
    ip: Type.Optional(Type.String({ maxLength: 64 })),
    name: Type.Optional(Type.String({ maxLength: NAME_MAX_LENGTH })),
    userdata: Type.Optional(Type.String()),
    pinned: Type.Optional(Pinned),
  },
  {
    description:
      'Sets the members present; members absent keep their stored value. Unknown members are ignored.',
  },
);
export type EditBody = Static<typeof EditBody>;

const orNull = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Boolean>>(t: T) =>
  Type.Union([t, Type.Null()]);

export const PatchBody = Type.Object(
  {
    ip: Type.Optional(Type.String({ maxLength: 64 })),
    name: Type.Optional(orNull(Type.String({ maxLength: NAME_MAX_LENGTH }))),
    userdata: Type.Optional(orNull(Type.String())),
    pinned: Type.Optional(
      Type.Object({
        name: Type.Optional(orNull(Type.Boolean())),
        userdata: Type.Optional(orNull(Type.Boolean())),
      }),
    ),
  },
  {
    description:
      'JSON merge patch: members present are set, absent ones stay; null empties name or userdata and unpins a pin.',
  },
);
export type PatchBody = Static<typeof PatchBody>;

export const DeviceRecord = Type.Object({
  id: Type.String(),
  ip: Type.String(),
  name: Type.String(),
  userdata: Type.String(),
});

export const HostList = Type.Object({
  hosts: Type.Array(Type.String()),
  next: Type.Optional(Type.String({ description: 'Pass as ?after= to get the next page' })),
});

export const ListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000 })),
  after: Type.Optional(Type.String({ maxLength: ID_MAX_LENGTH })),
});
