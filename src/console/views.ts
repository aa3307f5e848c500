/**
 * The console's fleet summary (GET /ztp/mng/stats) and its device page (GET /ztp/mng/devices).
 * TypeBox only: the browser bundle imports their types.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DevicePage, DeviceRow } from '../devices/views.js';
import { ReportView } from '../reports/views.js';

/** A device page whose rows carry each device's latest progress report (its status). */
export const ConsoleDevicePage = Type.Object({
  ...DevicePage.properties,
  items: Type.Array(
    Type.Object({
      ...DeviceRow.properties,
      report: Type.Union([ReportView, Type.Null()], {
        description: "The device's latest progress report (POST /ztp/report/{id})",
      }),
    }),
  ),
});
export type ConsoleDevicePage = Static<typeof ConsoleDevicePage>;

const TriggerCountsView = Type.Object({
  pending: Type.Integer(),
  delivered: Type.Integer(),
  failed: Type.Integer(),
  dead: Type.Integer(),
});

export const StatsView = Type.Object({
  time: Type.String({ format: 'date-time', description: 'Server clock (for relative times)' }),
  devices: Type.Integer(),
  registeredLastHour: Type.Integer({
    description: 'Devices whose last registration is within the last hour',
  }),
  triggersEnabled: Type.Boolean({ description: 'A manager URL is configured' }),
  triggers: Type.Object(TriggerCountsView.properties, {
    description:
      'Devices by the state of their latest trigger (a device re-queued after a failure counts once, by its new state)',
  }),
  eventStreams: Type.Integer({ description: 'Open /ztp/mng/events streams on this server' }),
});
export type StatsView = Static<typeof StatsView>;
