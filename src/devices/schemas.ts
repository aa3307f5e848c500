/**
 * The device routes' request schemas (TypeBox): the same objects validate requests and produce
 * the OpenAPI document at /openapi.json.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ID_MAX_LENGTH, NAME_MAX_LENGTH } from '../devices/identity.js';

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
    name: Type.Optional(Type.String({ maxLength: NAME_MAX_LENGTH, default: '' })),
    userdata: Type.Optional(Type.String({ description: 'Free text up to 64 KiB', default: '' })),
  },
  { description: 'Unknown members are ignored.' },
);
export type RegisterBody = Static<typeof RegisterBody>;

export const EditBody = Type.Object(
  {
    ip: Type.String({ maxLength: 64 }),
    name: Type.Optional(Type.String({ maxLength: NAME_MAX_LENGTH, default: '' })),
    userdata: Type.Optional(Type.String({ default: '' })),
  },
  { description: 'Replaces ip, name and userdata. Unknown members are ignored.' },
);
export type EditBody = Static<typeof EditBody>;

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
