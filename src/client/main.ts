/** Placeholder until its issue lands. */
export function main(_argv: string[]): Promise<number> {
  console.error('ztp: this command is not available yet');
  return Promise.resolve(1);
}
