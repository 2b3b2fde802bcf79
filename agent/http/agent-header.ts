/**
 * The header on every answer of an agent (its version): what tells greenlight's CLI it reached an
 * agent, not another service or a proxy's error page that happens to answer 2xx JSON (an emergency
 * rollback must never report a success it did not get). Its own module: the CLI reads it without
 * loading the HTTP server.
 */
export const AGENT_HEADER = 'greenlight-version';
