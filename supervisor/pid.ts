/**
 * Process identifiers and references.
 *
 * @module
 */

/**
 * A process identifier. Compare pids with `===` (the runtime hands out one
 * object per process) or by `id`. The type parameters are the messages the
 * process accepts and are used only by the type checker.
 *
 * @typeParam Call The messages `call` accepts.
 * @typeParam Reply What `call` resolves to.
 * @typeParam Cast The messages `cast` accepts.
 */
export class Pid<Call = unknown, Reply = unknown, Cast = unknown> {
  /** The process number, unique within its runtime. */
  readonly id: number;
  declare readonly __protocol?: [Call, Reply, Cast];

  /**
   * @param id The process number (only the runtime creates pids).
   */
  constructor(id: number) {
    this.id = id;
  }

  /** `<0.N>`, as OTP prints a local pid. */
  toString(): string {
    return `<0.${this.id}>`;
  }
}

/** A monitor or timer reference. */
export class Ref {
  /** The reference number, unique within its runtime. */
  readonly id: number;

  /**
   * @param id The reference number (only the runtime creates refs).
   */
  constructor(id: number) {
    this.id = id;
  }

  /** `#Ref<N>`. */
  toString(): string {
    return `#Ref<${this.id}>`;
  }
}
