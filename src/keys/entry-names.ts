import type { DataClass } from '../policy/policy.js';
import type { TenantNames } from './tenant-names.js';

/** The scope parts of a context that a class may require. */
export interface ScopeParts {
  readonly user?: string;
  readonly session?: string;
}

/** The store key of an entry: the class's scope parts are part of the name, so two users never share an entry. */
export function entryKey(
  names: TenantNames,
  dataClass: DataClass,
  resource: string,
  id: string,
  scope: ScopeParts,
): string {
  const user = dataClass.scope.includes('user') ? (scope.user ?? '') : '';
  const session = dataClass.scope.includes('session') ? (scope.session ?? '') : '';
  return names.entry(dataClass.name, resource, id, user, session);
}

/** The scope tags an entry carries, so that a logout or session end reaches it. */
export function scopeTags(names: TenantNames, dataClass: DataClass, scope: ScopeParts): string[] {
  const tags: string[] = [];
  if (dataClass.scope.includes('user') && scope.user !== undefined)
    tags.push(names.scope('user', scope.user));
  if (dataClass.scope.includes('session') && scope.session !== undefined)
    tags.push(names.scope('session', scope.session));
  return tags;
}
