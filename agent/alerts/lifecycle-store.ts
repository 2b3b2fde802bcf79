/**
 * What the alert lifecycle keeps across restarts, behind one narrow interface: silences,
 * maintenance windows, incidents with their escalation, and the alerts of open incidents with
 * what each receiver was told. The SQL lives in agent/store.ts; writes go through the journal,
 * so a failing disk holds them in memory and writes them on recovery, as it does all state.
 * (A cluster's store implements the same interface.)
 */
import type { Journal } from '../events/journal.js';
import type { AlertLifecycleTable, Store } from '../events/store.js';
import type { StoredAlert } from './alert-dispatcher.js';
import type { IncidentRecord } from './escalation.js';
import type { MaintenanceRecord } from './maintenance.js';
import type { Silence } from './silences.js';

/** One kind of record: read all at start, write or remove one at a time. */
export interface RecordTable<T> {
  all(): T[];
  save(id: string, record: T): void;
  remove(id: string): void;
}

export interface LifecycleStore {
  silences: RecordTable<Silence>;
  maintenance: RecordTable<MaintenanceRecord>;
  incidents: RecordTable<IncidentRecord>;
  alerts: RecordTable<StoredAlert>;
}

/** The lifecycle's records in the agent's SQLite store, written through its journal. */
export function journaledLifecycleStore(store: Store, journal: Journal): LifecycleStore {
  const table = <T>(name: AlertLifecycleTable): RecordTable<T> => ({
    all: () => store.alertLifecycleRecords<T>(name),
    save: (id, record) => journal.saveWith(`${name}:${id}`, `saving ${name} ${id}`, (s) => s.saveAlertLifecycleRecord(name, id, record)),
    remove: (id) => journal.saveWith(`${name}:${id}`, `removing ${name} ${id}`, (s) => s.deleteAlertLifecycleRecord(name, id)),
  });
  return { silences: table('silences'), maintenance: table('maintenance_windows'), incidents: table('alert_incidents'), alerts: table('active_alerts') };
}

/** Records in memory only: before the store is open, and for tests. */
export function memoryLifecycleStore(): LifecycleStore {
  const table = <T>(): RecordTable<T> => {
    const rows = new Map<string, T>();
    return { all: () => [...rows.values()], save: (id, record) => void rows.set(id, record), remove: (id) => void rows.delete(id) };
  };
  return { silences: table(), maintenance: table(), incidents: table(), alerts: table() };
}
