/**
 * Every plugin greenlight knows, in one place. Adding a receiver, traffic adapter or action is
 * one new file exporting `{ type, schema, create }` and one line here.
 */
import type { PluginSchemas } from '../config/schema.js';
import type { AlertReceiver } from './alerts/alert-receiver.js';
import type { PluginDefinition } from './plugin.js';
import { noneTraffic } from './traffic/none-traffic.js';
import type { TrafficAdapter } from './traffic/traffic-adapter.js';

type AnyDefinition<T> = PluginDefinition<any, T>;

export const TRAFFIC_ADAPTERS: readonly AnyDefinition<TrafficAdapter>[] = [
  noneTraffic,
];

export const ALERT_RECEIVERS: readonly AnyDefinition<AlertReceiver>[] = [
];

export const PLUGIN_SCHEMAS: PluginSchemas = {
  traffic: TRAFFIC_ADAPTERS.map((plugin) => plugin.schema),
  receivers: ALERT_RECEIVERS.map((plugin) => plugin.schema),
  actions: [],
};
