/** Placeholder until its issue lands. */
export function exportMain(_argv: string[]): Promise<number> {
  console.error('ztp: export is not available yet');
  return Promise.resolve(1);
}
export const importMain = exportMain;
