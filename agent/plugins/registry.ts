/**
 * Every plugin greenlight knows, in one place. Adding a receiver, traffic adapter, action or CDN purger is
 * one new file exporting `{ type, schema, create }` and one line here.
 */
import type { PluginBlock, PluginSchemas } from '../../config/schema.js';
import type { Action } from '../actions/action.js';
import { alertAction } from '../actions/alert-action.js';
import { commandAction } from '../actions/command-action.js';
import { flagsAction } from '../actions/flags-action.js';
import { rollbackAction } from '../actions/rollback-action.js';
import type { AlertReceiver } from '../alerts/alert-receiver.js';
import { discordReceiver } from '../alerts/discord-receiver.js';
import { pagerDutyReceiver } from '../alerts/pagerduty-receiver.js';
import { slackReceiver } from '../alerts/slack-receiver.js';
import { webhookReceiver } from '../alerts/webhook-receiver.js';
import type { PluginDefinition } from './plugin.js';
import type { CdnPurger } from '../traffic/cdn-purger.js';
import { cloudflareCdn } from '../traffic/cloudflare-cdn.js';
import { commandCdn } from '../traffic/command-cdn.js';
import { commandTraffic } from '../traffic/command-traffic.js';
import { nginxTraffic } from '../traffic/nginx-traffic.js';
import { noneTraffic } from '../traffic/none-traffic.js';
import { renderTraffic } from '../traffic/render-traffic.js';
import type { TrafficAdapter } from '../traffic/traffic-adapter.js';
import { webhookCdn } from '../traffic/webhook-cdn.js';
import { webhookTraffic } from '../traffic/webhook-traffic.js';

// A registry holds plugins of every config shape: each checks its own block with its schema.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDefinition<T> = PluginDefinition<any, T>;

export const TRAFFIC_ADAPTERS: readonly AnyDefinition<TrafficAdapter>[] = [noneTraffic, webhookTraffic, commandTraffic, nginxTraffic, renderTraffic];

export const ALERT_RECEIVERS: readonly AnyDefinition<AlertReceiver>[] = [slackReceiver, discordReceiver, pagerDutyReceiver, webhookReceiver];

export const ACTIONS: readonly AnyDefinition<Action>[] = [rollbackAction, flagsAction, alertAction, commandAction];

/** What the `cdn` step after a switch purges with. */
export const CDN_PURGERS: readonly AnyDefinition<CdnPurger>[] = [cloudflareCdn, webhookCdn, commandCdn];

export const PLUGIN_SCHEMAS: PluginSchemas = {
  traffic: TRAFFIC_ADAPTERS.map((plugin) => plugin.schema),
  receivers: ALERT_RECEIVERS.map((plugin) => plugin.schema),
  actions: ACTIONS.map((plugin) => plugin.schema),
  cdn: CDN_PURGERS.map((plugin) => plugin.schema),
};

/** Build the plugin a config block names; the block was validated (and defaulted) by the plugin's schema at load. */
export function createPlugin<T, D>(definitions: readonly AnyDefinition<T>[], block: PluginBlock, deps: D): T {
  const definition = definitions.find((candidate) => candidate.type === block.type);
  if (!definition) throw new Error(`bug: no plugin of type ${block.type} (the config schema should have refused it)`);
  return definition.create(block, deps as never);
}
