/**
 * Units of work, engine-neutral: how the writes of several feature stores join one transaction.
 *
 * A feature store does not commit a write that must be atomic with another feature's: it builds a
 * `Step` for its engine, and the caller (a service) hands the steps of one use case to the
 * database's `Transactor`, which runs them in order inside one transaction of its group commit
 * and resolves with each step's result once that transaction is durably committed. A registration
 * is the device store's upsert step and the outbox's enqueue step; a feature added later (an
 * audit log, say) adds its own step to the same list without touching either store.
 *
 * Loads nothing at run time (no driver, no other module), so any layer may import its types.
 */

export type Engine = 'sqlite' | 'postgres' | 'memory';

/** SQLite: a synchronous function run inside the batch's transaction (in its own savepoint). */
export interface SqliteStep<T> {
  readonly engine: 'sqlite';
  run(): T;
}

/** What a PostgreSQL step may do with the transaction's connection (pg's PoolClient fits). */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<PgResult>;
}

export interface PgResult {
  rows: unknown[];
  rowCount: number | null;
}

/**
 * PostgreSQL, the cheap form: statements with their values inlined (simple protocol), sent with
 * the rest of the batch in one round trip, and a function of their results, one per statement.
 * `parse` runs after the statements took effect, so it must not throw (a failure belongs in
 * the SQL).
 */
export interface PgStatementsStep<T> {
  readonly engine: 'postgres';
  readonly statements: readonly string[];
  parse(results: PgResult[]): T;
}

/** PostgreSQL, the general form: a function of the transaction's connection. */
export interface PgFunctionStep<T> {
  readonly engine: 'postgres';
  run(client: PgQueryable): Promise<T>;
}

export type PostgresStep<T> = PgStatementsStep<T> | PgFunctionStep<T>;

/** The in-memory fakes (tests): a synchronous function. */
export interface MemoryStep<T> {
  readonly engine: 'memory';
  run(): T;
}

export type Step<T> = SqliteStep<T> | PostgresStep<T> | MemoryStep<T>;

/** The results of a list of steps, in the same order. */
export type StepResults<S extends readonly Step<unknown>[]> = {
  -readonly [K in keyof S]: S[K] extends Step<infer T> ? T : never;
};

export interface Transactor {
  readonly engine: Engine;
  /**
   * Runs `steps` in order in one transaction (one savepoint of the engine's group commit) and
   * resolves with their results after the commit is durable. A step that throws rolls all of
   * them back and rejects with its error. `key` orders the writes of one batch (PostgreSQL's
   * lock order: the id of the one device the steps touch).
   */
  commit<const S extends readonly Step<unknown>[]>(key: string, steps: S): Promise<StepResults<S>>;
}

/** An open database as services and the composition root see it. */
export interface Database extends Transactor {
  /** Resolves when the engine answers and takes writes; throws StorageUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Narrows a step to the engine a store was built for (a step of another engine is a bug). */
export function stepFor<E extends Engine>(
  engine: E,
  step: Step<unknown>,
): Extract<Step<unknown>, { engine: E }> {
  if (step.engine !== engine)
    throw new Error(`a ${step.engine} step cannot join a ${engine} transaction`);
  return step as Extract<Step<unknown>, { engine: E }>;
}

/**
 * A step that runs `step` and then `f` of its result, in the same engine and place of the unit:
 * how a service hands one step's result to a later step of the same transaction (the steps run
 * in order, so a later step built from a closure sees it).
 */
export function thenStep<T, U>(step: Step<T>, f: (result: T) => U): Step<U> {
  if (step.engine !== 'postgres') return { engine: step.engine, run: () => f(step.run()) };
  if ('run' in step) return { engine: 'postgres', run: async (c) => f(await step.run(c)) };
  return { engine: 'postgres', statements: step.statements, parse: (r) => f(step.parse(r)) };
}
