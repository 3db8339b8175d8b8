/**
 * Field allow lists as paths into the serialized value. `name` allows a top-level field with scalar content (a
 * string, number, boolean, null, or an array of them); `labs.code` allows `code` inside the object (or each object
 * of the array) under `labs`; `labs.*` allows everything under `labs`. An object under an allowed name is kept as a
 * container, but each of its members needs a path of its own: PHI nested under an allowed name must not ride along.
 */

/** One name in the allow list (the root: the value itself), and what may appear under it. */
export interface FieldTree {
  /** The path itself is listed: its scalar content is kept. */
  readonly listed: boolean;
  /** Listed as `path.*`: everything under it is kept, unchecked. */
  readonly subtree: boolean;
  readonly children: ReadonlyMap<string, FieldTree>;
}

/** Parsed JSON: what the field checks walk. */
type JsonObject = { [name: string]: unknown };

/** Why a path in an allow list is malformed, or undefined when it is well-formed. */
export function fieldPathProblem(path: string): string | undefined {
  const segments = path.split('.');
  if (segments.some((segment) => segment === ''))
    return 'a field path must not have an empty segment (check the dots)';
  if (segments.length === 1 && segments[0] === '*') {
    return 'a bare `*` would allow every field; list the fields, or use `name.*` for one subtree';
  }
  if (segments.slice(0, -1).includes('*')) return '`*` may only be the last segment of a field path';
  return undefined;
}

/** Builds the tree of an allow list the schema has validated (see fieldPathProblem). */
export function compileFieldPaths(paths: readonly string[]): FieldTree {
  interface Draft {
    listed: boolean;
    subtree: boolean;
    children: Map<string, Draft>;
  }
  const draft = (): Draft => ({ listed: false, subtree: false, children: new Map() });
  const root = draft();
  for (const path of paths) {
    const segments = path.split('.');
    const last = segments.at(-1) === '*' ? segments.length - 1 : segments.length;
    let node = root;
    for (const segment of segments.slice(0, last)) {
      let child = node.children.get(segment);
      if (child === undefined) {
        child = draft();
        node.children.set(segment, child);
      }
      node = child;
    }
    if (last < segments.length) node.subtree = true;
    else node.listed = true;
  }
  return root;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The members of `object` (parsed JSON) that the tree allows, and the dot paths of those it does not (array
 * elements share their array's path, so each path is reported once). Returns `object` itself when nothing was
 * removed, so the caller can reuse the text it was parsed from.
 */
export function filterFields(
  tree: FieldTree,
  object: JsonObject,
): { readonly value: JsonObject; readonly stripped: readonly string[] } {
  const stripped = new Set<string>();
  const value = filterMembers(tree, object, '', stripped);
  return { value, stripped: Object.freeze([...stripped]) };
}

/** Marks an element or member that is removed. */
const removed = Symbol('removed');

function filterMembers(
  node: FieldTree,
  object: JsonObject,
  prefix: string,
  stripped: Set<string>,
): JsonObject {
  const names = Object.keys(object);
  // Built only once something changes: the common case keeps the parsed object as it is.
  let kept: [string, unknown][] | undefined;
  for (let index = 0; index < names.length; index += 1) {
    const name = names[index] as string;
    const member = object[name];
    const child = node.children.get(name);
    let result: unknown = removed;
    if (child === undefined) stripped.add(join(prefix, name));
    else result = filterValue(child, member, prefix, name, stripped);
    if (result !== member && kept === undefined) {
      kept = names.slice(0, index).map((earlier) => [earlier, object[earlier]]);
    }
    if (kept !== undefined && result !== removed) kept.push([name, result]);
  }
  // fromEntries defines properties, so a member named `__proto__` stays a member and never becomes a prototype.
  return kept === undefined ? object : Object.fromEntries(kept);
}

/** `prefix` and `name` make the value's path, joined only when needed: most values are listed scalars. */
function filterValue(
  node: FieldTree,
  value: unknown,
  prefix: string,
  name: string,
  stripped: Set<string>,
): unknown {
  if (node.subtree) return value;
  if (Array.isArray(value)) {
    let kept: unknown[] | undefined;
    for (let index = 0; index < value.length; index += 1) {
      const element: unknown = value[index];
      const result = filterValue(node, element, prefix, name, stripped);
      if (result !== element && kept === undefined) kept = value.slice(0, index);
      if (kept !== undefined && result !== removed) kept.push(result);
    }
    return kept ?? value;
  }
  if (isJsonObject(value)) return filterMembers(node, value, join(prefix, name), stripped);
  if (node.listed) return value;
  // A path named only as the way to listed fields below it allows containers, not scalars.
  stripped.add(join(prefix, name));
  return removed;
}

function join(prefix: string, name: string): string {
  return prefix === '' ? name : `${prefix}.${name}`;
}
