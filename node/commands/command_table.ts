/**
 * The table of supported commands: arity (Redis's convention: N means exactly
 * N arguments including the name, -N at least N), flags, key positions, ACL
 * categories and a one-line summary. It drives arity checks and COMMAND replies.
 *
 * @module
 */

/** One command's static description. */
export interface CommandSpec {
  /** Lower-case name (`client|setname` for a subcommand). */
  readonly name: string;
  /** Redis arity. */
  readonly arity: number;
  /** Command flags as COMMAND reports them. */
  readonly flags: readonly string[];
  /** First key argument index (0: none). */
  readonly firstKey: number;
  /** Last key argument index (-1: last argument). */
  readonly lastKey: number;
  /** Step between key arguments. */
  readonly keyStep: number;
  /** ACL categories. */
  readonly categories: readonly string[];
  /** The group COMMAND DOCS reports. */
  readonly group: string;
  /** One-line summary. */
  readonly summary: string;
  /** Subcommands of a container command. */
  readonly subcommands?: readonly CommandSpec[];
}

type Row = [
  name: string,
  arity: number,
  flags: string,
  keys: [number, number, number],
  categories: string,
  group: string,
  summary: string,
];

const NO_KEYS: [number, number, number] = [0, 0, 0];
const ONE_KEY: [number, number, number] = [1, 1, 1];
const ALL_KEYS: [number, number, number] = [1, -1, 1];
const PAIRS: [number, number, number] = [1, -1, 2];

const ROWS: Row[] = [
  [
    "ping",
    -1,
    "fast",
    NO_KEYS,
    "@fast @connection",
    "connection",
    "Returns the server's liveliness response",
  ],
  ["echo", 2, "fast", NO_KEYS, "@fast @connection", "connection", "Returns the given string"],
  [
    "hello",
    -1,
    "noscript loading stale fast no_auth allow_busy",
    NO_KEYS,
    "@fast @connection",
    "connection",
    "Handshakes with the server and selects the protocol",
  ],
  [
    "auth",
    -2,
    "noscript loading stale fast no_auth allow_busy",
    NO_KEYS,
    "@fast @connection",
    "connection",
    "Authenticates the connection",
  ],
  [
    "select",
    2,
    "loading stale fast",
    NO_KEYS,
    "@fast @connection",
    "connection",
    "Changes the selected database (only 0 exists)",
  ],
  [
    "reset",
    1,
    "noscript loading stale fast no_auth allow_busy",
    NO_KEYS,
    "@fast @connection",
    "connection",
    "Resets the connection",
  ],
  [
    "quit",
    -1,
    "noscript loading stale fast no_auth allow_busy",
    NO_KEYS,
    "@fast @connection",
    "connection",
    "Closes the connection",
  ],
  [
    "multi",
    1,
    "noscript loading stale fast allow_busy",
    NO_KEYS,
    "@fast @transaction",
    "transactions",
    "Starts a transaction",
  ],
  [
    "exec",
    1,
    "noscript loading stale skip_slowlog",
    NO_KEYS,
    "@slow @transaction",
    "transactions",
    "Executes all commands in a transaction",
  ],
  [
    "discard",
    1,
    "noscript loading stale fast allow_busy",
    NO_KEYS,
    "@fast @transaction",
    "transactions",
    "Discards a transaction",
  ],
  [
    "watch",
    -2,
    "noscript loading stale fast allow_busy",
    ALL_KEYS,
    "@fast @transaction",
    "transactions",
    "Monitors changes to keys to determine the execution of a transaction",
  ],
  [
    "unwatch",
    1,
    "noscript loading stale fast allow_busy",
    NO_KEYS,
    "@fast @transaction",
    "transactions",
    "Forgets about watched keys of a transaction",
  ],
  ["client", -2, "", NO_KEYS, "@slow", "connection", "A container for client connection commands"],
  ["object", -2, "", NO_KEYS, "@slow", "generic", "A container for object introspection commands"],
  ["config", -2, "", NO_KEYS, "@slow", "server", "A container for server configuration commands"],
  [
    "role",
    1,
    "noscript loading stale fast",
    NO_KEYS,
    "@admin @fast @dangerous",
    "server",
    "Returns the replication role",
  ],
  [
    "command",
    -1,
    "loading stale",
    NO_KEYS,
    "@slow @connection",
    "server",
    "Returns detailed information about all commands",
  ],
  [
    "info",
    -1,
    "loading stale",
    NO_KEYS,
    "@slow @dangerous",
    "server",
    "Returns information and statistics about the server",
  ],
  [
    "dbsize",
    1,
    "readonly fast",
    NO_KEYS,
    "@keyspace @read @fast",
    "server",
    "Returns the number of keys in the database",
  ],
  [
    "flushdb",
    -1,
    "write",
    NO_KEYS,
    "@keyspace @write @slow @dangerous",
    "server",
    "Removes all keys from the database",
  ],
  [
    "get",
    2,
    "readonly fast",
    ONE_KEY,
    "@read @string @fast",
    "string",
    "Returns the string value of a key",
  ],
  [
    "set",
    -3,
    "write denyoom",
    ONE_KEY,
    "@write @string @slow",
    "string",
    "Sets the string value of a key, with options",
  ],
  [
    "getdel",
    2,
    "write fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Returns the value of a key and deletes it",
  ],
  [
    "setnx",
    3,
    "write denyoom fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Set the string value of a key only when the key doesn't exist",
  ],
  [
    "setex",
    4,
    "write denyoom",
    ONE_KEY,
    "@write @string @slow",
    "string",
    "Sets the string value and expiration time of a key",
  ],
  [
    "psetex",
    4,
    "write denyoom",
    ONE_KEY,
    "@write @string @slow",
    "string",
    "Sets both string value and expiration time in milliseconds of a key",
  ],
  [
    "getset",
    3,
    "write denyoom fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Returns the previous string value of a key after setting it to a new value",
  ],
  [
    "touch",
    -2,
    "readonly fast",
    ALL_KEYS,
    "@keyspace @read @fast",
    "generic",
    "Returns the number of existing keys out of those specified after updating the time they were last accessed",
  ],
  [
    "setrange",
    4,
    "write denyoom",
    ONE_KEY,
    "@write @string @slow",
    "string",
    "Overwrites a part of a string value with another by an offset",
  ],
  [
    "setbit",
    4,
    "write denyoom",
    ONE_KEY,
    "@write @bitmap @slow",
    "bitmap",
    "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist",
  ],
  [
    "getbit",
    3,
    "readonly fast",
    ONE_KEY,
    "@read @bitmap @fast",
    "bitmap",
    "Returns a bit value by offset",
  ],
  [
    "bitcount",
    -2,
    "readonly",
    ONE_KEY,
    "@read @bitmap @slow",
    "bitmap",
    "Counts the number of set bits (population counting) in a string",
  ],
  [
    "bitpos",
    -3,
    "readonly",
    ONE_KEY,
    "@read @bitmap @slow",
    "bitmap",
    "Finds the first set (1) or clear (0) bit in a string",
  ],
  [
    "getrange",
    4,
    "readonly",
    ONE_KEY,
    "@read @string @slow",
    "string",
    "Returns a substring of the string stored at a key",
  ],
  [
    "substr",
    4,
    "readonly",
    ONE_KEY,
    "@read @string @slow",
    "string",
    "Returns a substring from a string value",
  ],
  [
    "flushall",
    -1,
    "write",
    NO_KEYS,
    "@keyspace @write @slow @dangerous",
    "server",
    "Removes all keys from all databases",
  ],
  [
    "incrbyfloat",
    3,
    "write denyoom fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist",
  ],
  [
    "keys",
    2,
    "readonly",
    NO_KEYS,
    "@keyspace @read @slow @dangerous",
    "generic",
    "Returns all key names that match a pattern",
  ],
  [
    "expiretime",
    2,
    "readonly fast",
    ONE_KEY,
    "@keyspace @read @fast",
    "generic",
    "Returns the expiration time of a key as a Unix timestamp",
  ],
  [
    "pexpiretime",
    2,
    "readonly fast",
    ONE_KEY,
    "@keyspace @read @fast",
    "generic",
    "Returns the expiration time of a key as a Unix milliseconds timestamp",
  ],
  ["time", 1, "loading stale fast", NO_KEYS, "@fast", "server", "Returns the server time"],
  [
    "getex",
    -2,
    "write fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Returns the value of a key and sets or clears its expiry",
  ],
  [
    "mget",
    -2,
    "readonly fast",
    ALL_KEYS,
    "@read @string @fast",
    "string",
    "Returns the values of several keys",
  ],
  [
    "mset",
    -3,
    "write denyoom",
    PAIRS,
    "@write @string @slow",
    "string",
    "Sets several keys atomically",
  ],
  [
    "msetnx",
    -3,
    "write denyoom",
    PAIRS,
    "@write @string @slow",
    "string",
    "Sets several keys atomically if none of them exists",
  ],
  ["del", -2, "write", ALL_KEYS, "@keyspace @write @slow", "generic", "Deletes keys"],
  ["unlink", -2, "write fast", ALL_KEYS, "@keyspace @write @fast", "generic", "Deletes keys"],
  ["rename", 3, "write", [1, 2, 1], "@keyspace @write @slow", "generic", "Renames a key"],
  [
    "copy",
    -3,
    "write",
    [1, 2, 1],
    "@keyspace @write @slow",
    "generic",
    "Copies the value of a key to a new key",
  ],
  [
    "renamenx",
    3,
    "write fast",
    [1, 2, 1],
    "@keyspace @write @fast",
    "generic",
    "Renames a key only when the new name does not exist",
  ],
  [
    "exists",
    -2,
    "readonly fast",
    ALL_KEYS,
    "@keyspace @read @fast",
    "generic",
    "Counts how many of the given keys exist",
  ],
  [
    "incr",
    2,
    "write denyoom fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Increments an integer value by one",
  ],
  [
    "incrby",
    3,
    "write denyoom fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Increments an integer value by a number",
  ],
  [
    "decr",
    2,
    "write denyoom fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Decrements an integer value by one",
  ],
  [
    "decrby",
    3,
    "write denyoom fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Decrements an integer value by a number",
  ],
  [
    "append",
    3,
    "write denyoom fast",
    ONE_KEY,
    "@write @string @fast",
    "string",
    "Appends to the value of a key",
  ],
  [
    "strlen",
    2,
    "readonly fast",
    ONE_KEY,
    "@read @string @fast",
    "string",
    "Returns the length of a string value",
  ],
  [
    "expire",
    -3,
    "write fast",
    ONE_KEY,
    "@keyspace @write @fast",
    "generic",
    "Sets a key's time to live in seconds",
  ],
  [
    "pexpire",
    -3,
    "write fast",
    ONE_KEY,
    "@keyspace @write @fast",
    "generic",
    "Sets a key's time to live in milliseconds",
  ],
  [
    "expireat",
    -3,
    "write fast",
    ONE_KEY,
    "@keyspace @write @fast",
    "generic",
    "Sets a key's expiry as a Unix time in seconds",
  ],
  [
    "pexpireat",
    -3,
    "write fast",
    ONE_KEY,
    "@keyspace @write @fast",
    "generic",
    "Sets a key's expiry as a Unix time in milliseconds",
  ],
  [
    "ttl",
    2,
    "readonly fast",
    ONE_KEY,
    "@keyspace @read @fast",
    "generic",
    "Returns a key's time to live in seconds",
  ],
  [
    "pttl",
    2,
    "readonly fast",
    ONE_KEY,
    "@keyspace @read @fast",
    "generic",
    "Returns a key's time to live in milliseconds",
  ],
  [
    "persist",
    2,
    "write fast",
    ONE_KEY,
    "@keyspace @write @fast",
    "generic",
    "Removes a key's expiry",
  ],
  [
    "scan",
    -2,
    "readonly",
    NO_KEYS,
    "@keyspace @read @slow",
    "generic",
    "Iterates over the key names",
  ],
  [
    "type",
    2,
    "readonly fast",
    ONE_KEY,
    "@keyspace @read @fast",
    "generic",
    "Returns the type of a key's value",
  ],
  ["spire.stats", -1, "readonly", NO_KEYS, "@slow", "spire", "Returns node and engine statistics"],
  ["spire.regions", -1, "readonly", NO_KEYS, "@slow", "spire", "Returns the regions of the node"],
  [
    "spire.scanrange",
    -3,
    "readonly",
    NO_KEYS,
    "@read @slow",
    "spire",
    "Scans keys in [start, end) with engine cost figures",
  ],
];

const SUBCOMMANDS: Record<string, Row[]> = {
  object: [
    [
      "object|encoding",
      3,
      "readonly",
      [2, 2, 1],
      "@keyspace @read @slow",
      "generic",
      "Returns the encoding redis-server gives such a value written by SET (Spire stores every value alike)",
    ],
    [
      "object|refcount",
      3,
      "readonly",
      [2, 2, 1],
      "@keyspace @read @slow",
      "generic",
      "Returns the reference count of a value: always 1, Spire shares no values",
    ],
    [
      "object|idletime",
      3,
      "readonly",
      [2, 2, 1],
      "@keyspace @read @slow",
      "generic",
      "Refused for an existing key: Spire does not track when a key was last read",
    ],
    [
      "object|freq",
      3,
      "readonly",
      [2, 2, 1],
      "@keyspace @read @slow",
      "generic",
      "Refused for an existing key: Spire does not track how often a key is read",
    ],
  ],
  config: [
    [
      "config|get",
      -3,
      "admin noscript loading stale",
      NO_KEYS,
      "@admin @slow @dangerous",
      "server",
      "Returns the effective values of configuration parameters",
    ],
    [
      "config|resetstat",
      2,
      "admin noscript loading stale",
      NO_KEYS,
      "@admin @slow @dangerous",
      "server",
      "Resets INFO's statistics, commandstats and errorstats (not the /metrics counters)",
    ],
    [
      "config|set",
      -4,
      "admin noscript loading stale",
      NO_KEYS,
      "@admin @slow @dangerous",
      "server",
      "Refused: settings come from the YAML config, flags and SPIRE_* variables at start-up",
    ],
  ],
  client: [
    [
      "client|setname",
      3,
      "noscript loading stale",
      NO_KEYS,
      "@slow @connection",
      "connection",
      "Sets the connection name",
    ],
    [
      "client|getname",
      2,
      "noscript loading stale",
      NO_KEYS,
      "@slow @connection",
      "connection",
      "Returns the connection name",
    ],
    [
      "client|id",
      2,
      "noscript loading stale",
      NO_KEYS,
      "@slow @connection",
      "connection",
      "Returns the connection id",
    ],
    [
      "client|info",
      2,
      "noscript loading stale",
      NO_KEYS,
      "@slow @connection",
      "connection",
      "Returns information about this connection",
    ],
    [
      "client|kill",
      -3,
      "admin noscript loading stale",
      NO_KEYS,
      "@admin @slow @dangerous @connection",
      "connection",
      "Kills open connections",
    ],
    [
      "client|list",
      -2,
      "admin noscript loading stale",
      NO_KEYS,
      "@admin @slow @dangerous @connection",
      "connection",
      "Lists open connections",
    ],
    [
      "client|setinfo",
      4,
      "noscript loading stale",
      NO_KEYS,
      "@slow @connection",
      "connection",
      "Sets information about the client library (lib-name, lib-ver)",
    ],
  ],
  command: [
    [
      "command|count",
      2,
      "loading stale",
      NO_KEYS,
      "@slow @connection",
      "server",
      "Returns the number of commands",
    ],
    [
      "command|info",
      -2,
      "loading stale",
      NO_KEYS,
      "@slow @connection",
      "server",
      "Returns information about commands",
    ],
    [
      "command|docs",
      -2,
      "loading stale",
      NO_KEYS,
      "@slow @connection",
      "server",
      "Returns documentary information about commands",
    ],
    [
      "command|list",
      -2,
      "loading stale",
      NO_KEYS,
      "@slow @connection",
      "server",
      "Returns a list of command names",
    ],
  ],
};

/** The HELP subcommand every container command has (its reply is built from the table). */
function helpRow(container: string, group: string): Row {
  return [
    `${container}|help`,
    2,
    "loading stale",
    NO_KEYS,
    "@slow",
    group,
    "Returns helpful text about the different subcommands",
  ];
}

/**
 * The arguments of each subcommand as its HELP line shows them (Redis's notation); a subcommand
 * without an entry takes none.
 */
export const SUBCOMMAND_USAGE: Readonly<Record<string, string>> = {
  "config|get": "<pattern> [<pattern> ...]",
  "config|set": "<directive> <value> [<directive> <value> ...]",
  "client|setname": "<name>",
  "client|kill": "<ip:port> | <filter> <value> [<filter> <value> ...]",
  "client|setinfo": "<LIB-NAME|LIB-VER> <value>",
  "command|info": "[<command-name> ...]",
  "command|docs": "[<command-name> ...]",
  "object|encoding": "<key>",
  "object|refcount": "<key>",
  "object|idletime": "<key>",
  "object|freq": "<key>",
};

function toSpec(row: Row): CommandSpec {
  const [name, arity, flags, [firstKey, lastKey, keyStep], categories, group, summary] = row;
  const listed = SUBCOMMANDS[name];
  const subs = listed === undefined ? undefined : [...listed, helpRow(name, group)];
  const base = {
    name,
    arity,
    flags: flags === "" ? [] : flags.split(" "),
    firstKey,
    lastKey,
    keyStep,
    categories: categories.split(" "),
    group,
    summary,
  };
  return subs === undefined ? base : { ...base, subcommands: subs.map(toSpec) };
}

/**
 * Builds the command table.
 * @returns lower-case name to spec
 * @example
 * ```ts
 * import { commandTable } from "./command_table.ts";
 * console.assert(commandTable().get("get")?.arity === 2);
 * ```
 */
export function commandTable(): ReadonlyMap<string, CommandSpec> {
  table ??= new Map(ROWS.map((r) => [r[0], toSpec(r)]));
  return table;
}

/** The table, built once: its specs are read-only. */
let table: ReadonlyMap<string, CommandSpec> | undefined;

/**
 * Checks an argument count against a Redis arity.
 * @param arity the spec's arity
 * @param argc the number of arguments including the command name
 * @returns true when acceptable
 */
export function arityOk(arity: number, argc: number): boolean {
  return arity >= 0 ? argc === arity : argc >= -arity;
}

/**
 * The key arguments of a command, from its key positions in the command table, a container's
 * from its subcommand's (none for an unknown command or subcommand, or one without keys).
 * @param args the command as sent, its name first
 * @returns the key arguments, in order
 */
export function commandKeys(args: readonly Uint8Array[]): Uint8Array[] {
  const first = args[0];
  const container = first === undefined ? undefined : commandTable().get(lowerName(first));
  // A container's keys are its subcommand's (OBJECT ENCODING key).
  const second = args[1];
  const spec = container?.subcommands === undefined || second === undefined
    ? container
    : container.subcommands.find((s) => s.name === `${container.name}|${lowerName(second)}`);
  if (spec === undefined || spec.firstKey <= 0) return [];
  const last = spec.lastKey < 0 ? args.length + spec.lastKey : spec.lastKey;
  const keys: Uint8Array[] = [];
  for (let i = spec.firstKey; i <= last && i < args.length; i += Math.max(1, spec.keyStep)) {
    keys.push(args[i]!);
  }
  return keys;
}

const latin1 = new TextDecoder("latin1");

/**
 * A command or argument name in lower case: ASCII-lower-cased without a decoder call for short
 * names (the per-command hot path).
 * @param b the name's bytes
 * @returns the name in lower case
 */
export function lowerName(b: Uint8Array): string {
  if (b.length > 32) return latin1.decode(b).toLowerCase();
  let out = "";
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    out += String.fromCharCode(c >= 65 && c <= 90 ? c + 32 : c);
  }
  return out;
}
