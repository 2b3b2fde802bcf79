/**
 * Builds the configured plugins (registry.ts) with what each may use: a child logger named after
 * its kind, the outbound HTTP pool, the clock, `sleep` and the redactor; actions also get the
 * Controller, the dry-run flag and their name. Besides the configured actions there is always the
 * operator's manual rollback, kept across reloads.
 */
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import type { Redactor } from '../../config/redactor.js';
import type { Config } from '../../config/schema.js';
import type { Action, Controller } from '../actions/action.js';
import { rollbackAction } from '../actions/rollback-action.js';
import type { AlertReceiver } from '../alerts/alert-receiver.js';
import { buildSwitchSteps, type SwitchStep } from '../traffic/switch-steps.js';
import type { TrafficAdapter } from '../traffic/traffic-adapter.js';
import { sleep, type PluginDeps } from './plugin.js';
import { ACTIONS, ALERT_RECEIVERS, CDN_PURGERS, createPlugin, TRAFFIC_ADAPTERS } from './registry.js';
import { PROMOTION_SWITCH, promotionSwitchAction } from '../promote/promotion-switch.js';

/** The name under which operator-requested rollbacks run (not a config entry). */
export const MANUAL_ROLLBACK = 'manual-rollback';

export class PluginFactory {
  readonly #logger: Logger;
  readonly #dispatcher: () => Dispatcher;
  readonly #now: () => number;
  readonly #redactor: Redactor;

  constructor(options: { logger: Logger; dispatcher: () => Dispatcher; now: () => number; redactor: Redactor }) {
    this.#logger = options.logger;
    this.#dispatcher = options.dispatcher;
    this.#now = options.now;
    this.#redactor = options.redactor;
  }

  deps(component: string): PluginDeps {
    return { logger: this.#logger.child({ component }), dispatcher: this.#dispatcher(), now: this.#now, sleep, redactor: this.#redactor };
  }

  traffic(config: Config): TrafficAdapter {
    return createPlugin(TRAFFIC_ADAPTERS, config.traffic, this.deps('traffic'));
  }

  /** The steps after a switch (switching.steps), the cdn ones with their purger plugin. */
  switchSteps(config: Config): SwitchStep[] {
    return buildSwitchSteps(config, this.deps('switch'), (block) => createPlugin(CDN_PURGERS, block, this.deps('cdn')));
  }

  receivers(config: Config): AlertReceiver[] {
    return config.alerts.receivers.map((block) => createPlugin(ALERT_RECEIVERS, block, this.deps('alerts')));
  }

  /**
   * The configured actions plus the manual rollback and the journal's name for a promotion's switch
   * (whose `reconcile` settles one a crash interrupted); `keep` supplies instances to reuse by name
   * (their cooldowns and holds go on).
   */
  actions(config: Config, keep: ReadonlyMap<string, Action>, options: { controller: Controller; dryRun: boolean }): Map<string, Action> {
    const actions = new Map<string, Action>();
    const deps = (name: string) => ({ ...this.deps('actions'), ...options, name });
    for (const [name, block] of Object.entries(config.actions)) actions.set(name, keep.get(name) ?? createPlugin(ACTIONS, block, deps(name)));
    actions.set(MANUAL_ROLLBACK, keep.get(MANUAL_ROLLBACK) ?? rollbackAction.create({ type: 'rollback', cooldown: 0, settle: 0 }, deps(MANUAL_ROLLBACK)));
    actions.set(PROMOTION_SWITCH, promotionSwitchAction({ controller: options.controller, now: this.#now }));
    return actions;
  }
}
