/** `ztp serve`: parse options (flags > environment > defaults) and run until a signal. */
import { loadServeConfig, optionsHelp, SERVE_OPTIONS } from '../config.js';
import { ConfigError } from '../errors.js';

const HELP = `Usage: ztp serve [options]

Runs the registry server. Every option can also be set through its environment variable.

Options:
${optionsHelp(SERVE_OPTIONS)}
  --help
      Show this help.`;

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  let config;
  try {
    config = loadServeConfig(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`ztp serve: ${e.message}\nRun 'ztp serve --help' for the options.`);
      return 2;
    }
    throw e;
  }
  const { startServer } = await import('../server.js');
  let server;
  try {
    server = await startServer(config);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`ztp serve: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const onHup = () => {
    server.app.log.info(
      { signal: 'SIGHUP' },
      'reloading certificates, tokens and enrollment rules',
    );
    server.reload();
  };
  process.on('SIGHUP', onHup);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      server.app.log.info({ signal }, 'shutting down');
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      process.off('SIGHUP', onHup);
      void server.close().then(resolve);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  return 0;
}
