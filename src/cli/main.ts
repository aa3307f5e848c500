/**
 * `ztp` command line. Each command is loaded on demand so that `ztp register` (run on devices at
 * boot) never loads the server's modules.
 */
const USAGE = `Usage: ztp <command> [options]

Commands:
  serve       run the registry server
  register    register this device with a server (run at every boot)
  report      report this device's provisioning progress (RFC 8572 progress types)
  export      write every device as JSON lines to standard output
  import      read JSON lines (from export) on standard input into the database
  token       create API tokens
  dhcp        print DHCP server configuration for zero-touch boot (isc, kea, dnsmasq)

Run 'ztp <command> --help' for the options of a command.`;

const COMMANDS: Record<string, () => Promise<{ main: (argv: string[]) => Promise<number> }>> = {
  serve: () => import('./serve.js'),
  register: () => import('../client/main.js'),
  report: () =>
    import('../client/main.js').then((m) => ({
      main: (argv: string[]) => m.reportMain(argv),
    })),
  export: () => import('./transfer.js').then((m) => ({ main: m.exportMain })),
  import: () => import('./transfer.js').then((m) => ({ main: m.importMain })),
  token: () => import('./token.js'),
  dhcp: () => import('./dhcp.js'),
};

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  const load = COMMANDS[command];
  if (!load) {
    console.error(`ztp: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  const mod = await load();
  return mod.main(rest);
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`ztp: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
