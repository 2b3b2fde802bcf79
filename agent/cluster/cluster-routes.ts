/**
 * The cluster's routes: GET /api/v1/cluster (who leads, the members), and the forwarding of
 * actions asked of a follower. Every agent serves every endpoint; an action (a manual rollback, a
 * promotion, a flag change or preset) is carried out once, by the leader: a follower checks the
 * caller's token as usual, then sends the same request to the leader's advertised URL and
 * answers with the leader's answer. No leader (an election under way, the database down): 503,
 * try again.
 */
import { HttpError, screenBody, type Route, type RouteResponse } from '../http/http-server.js';
import type { ClusterView } from './cluster.js';

/** Marks a request a follower forwarded: the agent it reaches answers it itself or refuses, never forwards it again. */
export const FORWARDED_HEADER = 'greenlight-forwarded-by';
/** How long a forwarded request may take at the leader (a promotion waits for its gates and watch). */
const FORWARD_TIMEOUT_MS = 15 * 60_000;
/** How long the leader waits for an operator's change to reach the cluster's database before it answers. */
const WRITE_WAIT_MS = 10_000;
/** How often a forward in flight checks that the agent it went to still leads. */
const LEADER_WATCH_MS = 250;

/** What the routes read of the cluster (an agent alone answers as a cluster of one). */
export interface ClusterRole {
  view(): ClusterView;
  /** Whether this agent acts now. */
  isLeader(): boolean;
  /** Where the leader is, when another agent leads. */
  leaderUrl(): string | undefined;
  /** Why what this agent just wrote is not yet the cluster's (refused, or held), after waiting at most `timeoutMs`; undefined when it is. */
  written?(timeoutMs: number): Promise<string | undefined>;
}

export function clusterRoutes(cluster: ClusterRole): Route[] {
  return [{ method: 'GET', path: '/api/v1/cluster', auth: 'none', handle: () => ({ status: 200, body: cluster.view() }) }];
}

/**
 * `routes` as the leader's: on a follower each request is forwarded to the leader and its answer
 * returned. A body is screened (Route.screen) where the request is carried out: a follower
 * forwards it as sent, a key named twice and all, so that the leader refuses it, and audits an
 * attempt on a locked flag in its own shared trail.
 */
export function leaderOnly(routes: readonly Route[], cluster: ClusterRole): Route[] {
  return routes.map((route) => ({
    ...route,
    screen: route.body ? () => undefined : undefined,
    handle: async (request) => {
      if (cluster.isLeader()) {
        if (route.body) screenBody(route, request.body, request.duplicates, request.actor);
        const response = await route.handle(request);
        // An answer means the change is the cluster's: a leader killed right after answering must
        // not take an acknowledged flag change or silence along (its writes go in the background).
        const problem = route.method === 'GET' ? undefined : await cluster.written?.(WRITE_WAIT_MS);
        if (problem !== undefined)
          throw new HttpError(
            503,
            `done on this agent (${cluster.view().self}), but not yet the cluster's: ${problem}; check GET ${route.path.split('/:')[0]} before asking again`,
          );
        return response;
      }
      const leader = cluster.leaderUrl();
      const self = cluster.view().self;
      if (leader !== undefined && request.headers[FORWARDED_HEADER] !== undefined)
        // Forwarded to this agent while it led, and it no longer does (a pause past its lease): nothing was done.
        throw new HttpError(503, `this agent no longer leads the cluster (${leader} does now): the request was not carried out; send it again`);
      if (leader === undefined)
        throw new HttpError(503, `no agent leads the cluster right now (an election is under way, or the database is unavailable): try again in a few seconds`);
      return forward(leader, route, request, self, cluster);
    },
  }));
}

/**
 * Carry `request` to the leader and bring back its answer. The wait ends when the leader does:
 * another agent taking the lease (the leader paused, frozen, cut off) ends it at once with a 503
 * saying so, rather than after FORWARD_TIMEOUT_MS. It is not sent again to the new leader: the
 * old one may have carried it out, and a rollback sent twice would switch traffic back.
 */
async function forward(leader: string, route: Route, request: Parameters<Route['handle']>[0], self: string, cluster: ClusterRole): Promise<RouteResponse> {
  const path = route.path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(request.params[name] ?? ''));
  const query = request.query.toString();
  const headers: Record<string, string> = { [FORWARDED_HEADER]: self };
  if (request.headers.authorization) headers.authorization = request.headers.authorization;
  if (route.body) headers['content-type'] = 'application/json';
  const ended = new AbortController();
  const timeout = setTimeout(
    () => ended.abort(new DOMException(`no answer within ${FORWARD_TIMEOUT_MS / 60_000} minutes`, 'TimeoutError')),
    FORWARD_TIMEOUT_MS,
  );
  let nowLeads: string | undefined;
  const watch = setInterval(() => {
    const current = cluster.leaderUrl();
    if (current === leader) return;
    nowLeads = current ?? 'no agent';
    ended.abort(new Error('the leader changed'));
  }, LEADER_WATCH_MS);
  let response: Response;
  let text: string;
  try {
    response = await fetch(`${leader}${path}${query ? `?${query}` : ''}`, { method: route.method, headers, body: request.rawBody, signal: ended.signal });
    text = await response.text();
  } catch (error) {
    if (nowLeads !== undefined)
      throw new HttpError(
        503,
        route.method === 'GET'
          ? `the leader changed while the request was at ${leader} (${nowLeads} leads now): try again`
          : `the leader changed while the request was at ${leader} (${nowLeads} leads now): it may or may not have been carried out; check greenlight tail (or GET /api/v1/state) before asking again`,
      );
    throw new HttpError(503, forwardFailure(leader, route, error));
  } finally {
    clearTimeout(timeout);
    clearInterval(watch);
  }
  return {
    status: response.status,
    text,
    headers: { 'content-type': response.headers.get('content-type') ?? 'application/json', 'greenlight-answered-by': leader },
  };
}

/**
 * Why a forwarded call has no answer, and what the operator may do. Refused before anything was
 * sent: ask again. Sent, and the leader died or went silent before it answered: a rollback or a
 * flag change may have been carried out all the same, and asking again blindly may do it twice.
 */
function forwardFailure(leader: string, route: Route, error: unknown): string {
  const code = (error as { cause?: { code?: unknown } }).cause?.code;
  const why = (error as { cause?: { message?: unknown } }).cause?.message ?? (error as Error).message;
  const notSent = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EAI_AGAIN';
  if (notSent || route.method === 'GET') return `the leader at ${leader} could not be reached (${String(why)}): try again in a few seconds`;
  return `the leader at ${leader} took the request but did not answer it (${String(why)}): it may have been carried out; check greenlight tail (or GET /api/v1/state) before asking again`;
}
