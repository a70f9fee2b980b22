// Who may do what. Every route the app registers has one permission in ROUTE_PERMISSIONS, and
// each role grants a set of permissions. A route missing from the table stops the app from
// being built (server/http/security.ts checks each route as it is registered), so a new route
// cannot slip in unguarded; test/http/auth.test.ts drives every route with every role.

export const ROLES = ['admin', 'readwrite', 'readonly', 'replica'] as const;
export type Role = (typeof ROLES)[number];

/**
 * - `public`: no token needed, ever (the health probe and the API contract).
 * - `any`: any valid token, whatever its role (what the server is, Prometheus metrics).
 * - `read`: documents, listings, collection descriptions, the change feed, store statistics.
 * - `write`: document writes and bulk loads.
 * - `admin`: creating and dropping collections and indexes, checkpoints and backups, promoting a standby.
 * - `replicate`: pulling the binlog and a checkpoint to start from, reporting a standby's progress (docs/REPLICATION.md).
 */
export type Permission = 'public' | 'any' | 'read' | 'write' | 'admin' | 'replicate';

export const GRANTS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  admin: new Set<Permission>(['any', 'read', 'write', 'admin', 'replicate']),
  readwrite: new Set<Permission>(['any', 'read', 'write']),
  readonly: new Set<Permission>(['any', 'read']),
  // A standby copies the binlog; it neither reads documents through the API nor writes them.
  replica: new Set<Permission>(['any', 'replicate']),
};

/** `METHOD url` as fastify registers it → what a caller needs. HEAD falls back to its GET. */
export const ROUTE_PERMISSIONS: Readonly<Record<string, Permission>> = {
  'GET /': 'any',
  'GET /healthz': 'public',
  'GET /stats': 'read',
  'GET /metrics': 'any',
  'GET /collections': 'read',
  'PUT /collections/:collection': 'admin',
  'GET /collections/:collection': 'read',
  'DELETE /collections/:collection': 'admin',
  'POST /collections/:collection/docs': 'write',
  'GET /collections/:collection/docs': 'read',
  'PUT /collections/:collection/docs/:id': 'write',
  'GET /collections/:collection/docs/:id': 'read',
  'PATCH /collections/:collection/docs/:id': 'write',
  'DELETE /collections/:collection/docs/:id': 'write',
  'POST /collections/:collection/bulk': 'write',
  'GET /collections/:collection/indexes': 'read',
  'PUT /collections/:collection/indexes/:name': 'admin',
  'GET /collections/:collection/indexes/:name': 'read',
  'DELETE /collections/:collection/indexes/:name': 'admin',
  'POST /collections/:collection/find': 'read',
  'POST /collections/:collection/explain': 'read',
  'POST /collections/:collection/count': 'read',
  'GET /changes': 'read',
  'GET /changes/stream': 'read',
  'GET /openapi.yaml': 'public',
  'GET /openapi.json': 'public',
  'GET /docs': 'public',
  'GET /docs/:file': 'public',
  'GET /replication/binlog': 'replicate',
  'GET /replication/checkpoint': 'replicate',
  'POST /replication/feedback': 'replicate',
  'POST /admin/promote': 'admin',
  'POST /admin/replica-of': 'admin',
  'GET /admin/checkpoint': 'admin',
  'POST /admin/checkpoint': 'admin',
};

/** The permission a route needs, or undefined if the table does not name it. */
export function permissionOf(method: string, url: string): Permission | undefined {
  return ROUTE_PERMISSIONS[`${method} ${url}`] ?? (method === 'HEAD' ? ROUTE_PERMISSIONS[`GET ${url}`] : undefined);
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function allows(role: Role, permission: Permission): boolean {
  return permission === 'public' || GRANTS[role].has(permission);
}
