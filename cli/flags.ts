/**
 * A small, strict command-line flag parser for the `spire` commands and
 * benchmarks. `--name value` and `--name=value`; unknown flags, missing
 * values and positional arguments are errors.
 *
 * @module
 */

/**
 * How each flag is read: `"boolean"` for a switch; any other text names the
 * value the flag takes, for messages (`"FILE"`, `"DIR"`, `"N"`).
 */
export type FlagSpec = Readonly<Record<string, string>>;

/** A bad command line; the message is shown to the user with the usage line. */
export class UsageError extends Error {
  /** @param message What is wrong with the arguments. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Parsed flags: `true` for switches that were given, strings for values. */
export type Flags = Record<string, string | true | undefined>;

/**
 * Parses `args` against `spec`.
 *
 * @param command The command name, for messages (`"spire config"`).
 * @param args The arguments after the command name.
 * @param spec The flags the command accepts.
 * @returns The flags that were given.
 * @throws {UsageError} On an unknown flag, a missing value, a repeated flag or a positional argument.
 */
export function parseFlags(command: string, args: readonly string[], spec: FlagSpec): Flags {
  const allowed = Object.entries(spec)
    .map(([name, kind]) => (kind === "boolean" ? `--${name}` : `--${name} ${kind}`))
    .join(", ");
  const flags: Flags = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (!arg.startsWith("--")) {
      throw new UsageError(
        `Cannot parse ${command} arguments: unexpected "${arg}"; allowed: ${allowed}`,
      );
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const kind = spec[name];
    if (kind === undefined) {
      throw new UsageError(
        `Cannot parse ${command} arguments: unknown option --${name}; allowed: ${allowed}`,
      );
    }
    if (flags[name] !== undefined) {
      throw new UsageError(`Cannot parse ${command} arguments: --${name} is given twice`);
    }
    if (kind === "boolean") {
      if (eq !== -1) {
        throw new UsageError(`Cannot parse ${command} arguments: --${name} takes no value`);
      }
      flags[name] = true;
      continue;
    }
    const value = eq === -1 ? args[++i] : arg.slice(eq + 1);
    if (value === undefined || value === "" || (eq === -1 && value.startsWith("--"))) {
      throw new UsageError(`Cannot parse ${command} arguments: --${name} needs a value`);
    }
    flags[name] = value;
  }
  return flags;
}

/**
 * Reads a TCP port flag.
 *
 * @param command The command name, for messages.
 * @param name The flag name.
 * @param text The flag's value.
 * @returns The port, 0 to 65535 (0 = pick a free one).
 * @throws {UsageError} When the text is not such a port.
 */
export function parsePort(command: string, name: string, text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    throw new UsageError(
      `Cannot parse ${command} arguments: --${name} "${text}" is not a port; allowed: 0 to 65535 (0 = any free port)`,
    );
  }
  return Number(text);
}

/**
 * Reads a whole-number flag.
 *
 * @param command The command name, for messages.
 * @param flags Parsed flags.
 * @param name The flag name.
 * @param fallback The value when the flag is absent.
 * @param max The largest value allowed (the smallest is 1).
 * @returns The number.
 * @throws {UsageError} When the value is not a whole number from 1 to `max`.
 */
export function intFlag(
  command: string,
  flags: Flags,
  name: string,
  fallback: number,
  max: number,
): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== "string" || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new UsageError(
      `Cannot parse ${command} arguments: --${name} "${raw}"; allowed: a whole number from 1 to ${max}`,
    );
  }
  return n;
}
