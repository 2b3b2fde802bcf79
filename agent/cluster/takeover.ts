/**
 * A new leader picks up where the last one left off, with the reconciliation that already runs
 * after a restart (agent/pipeline/pipeline.ts `resume`), fed from the shared store instead of the
 * local file:
 *
 * 1. the live environment and the flags as the shared state says;
 * 2. the incidents the last leader had open go on firing under their ids (their actions are not
 *    repeated), with what they were still owed; the actions it left started and unfinished are
 *    settled as after a crash (a rollback whose switch never got past its fence is made now);
 * 3. every rule's next incident is numbered after those the cluster already used, so an action
 *    record of an old incident is never taken for a new one's;
 * 4. an incident this agent opened while it followed (the last leader never recorded it) is acted
 *    on now, and so is any action of an open incident that no leader started; one it opened and
 *    acted on while it led an earlier term keeps its number, and its runs still under way here
 *    are left to finish, not settled as interrupted;
 * 5. the alert lifecycle starts from the records the last leader wrote (silences, windows, the
 *    incidents with the escalation level they reached, what each receiver was told): nothing
 *    already sent is sent again, and an escalation goes on from the level it reached.
 *
 * Every start is fenced again in the database, so none of this can run an action twice.
 */
import type { ResumeSource } from '../agent.js';
import type { LifecycleStore, RecordTable } from '../alerts/lifecycle-store.js';
import type { AlertLifecycleTable } from '../events/store.js';
import type { ActionContext } from '../actions/action.js';
import type { ActionRunner } from '../actions/action-runner.js';
import type { FlagStore } from '../flags/flag-store.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { StoredIncident } from '../pipeline/incident-book.js';
import type { TrafficControl } from '../traffic/traffic-control.js';
import type { Cluster } from './cluster.js';
import type { SharedSnapshot } from './pg-store.js';

/** The parts of the agent a takeover works on. */
export interface TakeoverHost {
  readonly pipeline: Pipeline;
  readonly actions: ActionRunner;
  readonly traffic: TrafficControl;
  readonly flags: FlagStore;
  readonly now: () => number;
  /** Start the alert lifecycle from these records, settled against the open incidents. */
  resumeAlerts(store: LifecycleStore): void;
  /** Settle the alert lifecycle against the open incidents and send what came due while this agent could not act. */
  wakeAlerts(): void;
}

/** The shared state as the resume path reads a store. */
export function sharedState(snapshot: SharedSnapshot): ResumeSource {
  return {
    path: 'the cluster database',
    get: <T>(key: string) => snapshot.state.get(key) as T | undefined,
    flagAudit: (limit: number) => snapshot.audit.slice(-limit),
    // A database from before the audit table is not a cluster's: nothing to move over.
    saveFlags: () => undefined,
    unfinishedActions: () => snapshot.actions.filter((record) => record.state === 'started'),
  };
}

export async function takeOver(host: TakeoverHost, cluster: Cluster): Promise<void> {
  const snapshot = await cluster.store.snapshot(host.flags.auditLimit);
  // Nothing awaits from here on: the shared state is applied and the actions started in one step.
  cluster.beginActing();
  const shared = sharedState(snapshot);
  const live = shared.get<string>('activeEnvironment');
  if (live !== undefined) host.traffic.follow(live);
  // The cluster's first leader: what it guards becomes what every agent guards (an agent started
  // with another GREENLIGHT_ACTIVE follows it), not each agent its own config's until a switch.
  else cluster.save('activeEnvironment', host.traffic.live);
  // The last leader's rollbacks: a failover right after one must not let traffic straight back.
  host.traffic.resumeRolledBack(shared.get('rolledBackFrom'));
  const flags = shared.get<Parameters<FlagStore['restore']>[0]>('flags');
  if (flags) host.flags.restore({ values: flags.values, versions: flags.versions, audit: snapshot.audit });

  const highest = new Map<string, number>();
  const note = (incident: string) => {
    const at = incident.lastIndexOf('#');
    const number = Number(incident.slice(at + 1));
    if (at > 0 && Number.isSafeInteger(number)) highest.set(incident.slice(0, at), Math.max(highest.get(incident.slice(0, at)) ?? 0, number));
  };
  for (const record of snapshot.actions) note(record.incident);
  const incidents = shared.get<Record<string, StoredIncident>>('incidents') ?? {};
  for (const stored of Object.values(incidents)) note(stored.incident);
  const sharedIds = new Set(Object.values(incidents).map((stored) => stored.incident));

  // Runs this agent started under an earlier term of its own and still has under way are not a
  // crash's leftovers: settling them "interrupted" would report its own rollback as failed.
  host.pipeline.resume(
    shared,
    shared.unfinishedActions().filter((record) => !host.actions.isRunning(record.incident, record.action)),
  );
  fireUnstarted(host, snapshot, highest, sharedIds);
  for (const [rule, used] of highest) host.pipeline.rules.numberAfter(rule, used);
  host.resumeAlerts(sharedLifecycle(cluster, snapshot));
}

/**
 * The alert lifecycle's records as a new leader reads them (the snapshot) and writes them (fenced,
 * in the background, while it leads: Cluster.saveLifecycle).
 */
export function sharedLifecycle(cluster: Pick<Cluster, 'saveLifecycle'>, snapshot: Pick<SharedSnapshot, 'lifecycle'>): LifecycleStore {
  const table = <T>(kind: AlertLifecycleTable): RecordTable<T> => ({
    all: () => (snapshot.lifecycle.get(kind) ?? []) as T[],
    save: (id, record) => cluster.saveLifecycle(kind, id, record),
    remove: (id) => cluster.saveLifecycle(kind, id, undefined),
  });
  return { silences: table('silences'), maintenance: table('maintenance_windows'), incidents: table('alert_incidents'), alerts: table('active_alerts') };
}

/**
 * This agent acts again in the same term (the database answers again, or a late renewal went
 * through): its alert lifecycle, which followed no incident and sent nothing meanwhile, catches
 * up (the notifications that came due go out now, not at the next escalation step). An action
 * whose start it could not record (so never ran) is run now, if its incident still fires. Actions
 * in flight recorded their start and are left alone; one of its own that ended while it could not
 * act left its record "started" for the leader, and the leader is this agent, in a term no
 * takeover ends: it settles that one now, as a takeover would.
 */
export async function resumeActions(host: TakeoverHost, cluster: Cluster): Promise<void> {
  const snapshot = await cluster.store.snapshot(host.flags.auditLimit);
  if (!cluster.isLeader()) return;
  host.wakeAlerts();
  host.pipeline.settleInterrupted(
    snapshot.actions.filter(
      (record) => record.state === 'started' && host.actions.leftToLeader(record) && !host.actions.isRunning(record.incident, record.action),
    ),
  );
  fireUnstarted(host, snapshot, new Map(), undefined);
}

/** Fire, for every open incident, its rule's actions that no leader started (renumbering one opened while following, see takeOver). */
function fireUnstarted(host: TakeoverHost, snapshot: SharedSnapshot, highest: Map<string, number>, sharedIds: Set<string> | undefined): void {
  const started = new Set(snapshot.actions.map((record) => `${record.incident}\u0000${record.action}`));
  for (const context of host.pipeline.incidents.list()) {
    const rule = context.rule;
    if (!rule) continue;
    let acting: ActionContext = context;
    const used = highest.get(rule.name) ?? 0;
    if (
      sharedIds &&
      !sharedIds.has(context.incident) &&
      Number(context.incident.slice(context.incident.lastIndexOf('#') + 1)) <= used &&
      // One this agent acted on opened while it led: its number is the cluster's already (its
      // records are what `used` counted), even if the shared incidents were not written yet.
      !host.actions.startedHere(context.incident, rule.actions)
    ) {
      // Opened here while following, under a number the cluster already used: renumber it.
      const incident = `${rule.name}#${used + 1}`;
      host.pipeline.rules.resumeFiring(rule.name, used + 1, context.startedAt, context.env);
      host.pipeline.holdResumed();
      acting = { ...context, incident };
      host.pipeline.incidents.open(acting);
    }
    host.actions.fireUnrecorded(rule.actions, acting, (incident, name) => started.has(`${incident}\u0000${name}`));
  }
}
