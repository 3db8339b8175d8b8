/** Where phicache keeps its local state (development keyring, audit signing keys, audit log): `$PHICACHE_HOME`, else `./.phicache`. */
export function phicacheHome(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env.PHICACHE_HOME ?? './.phicache';
}
