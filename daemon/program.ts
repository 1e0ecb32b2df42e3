// commander wiring only; each command lives in commands/ (cli.ts is the entry).
import { Argument, Command, CommanderError } from 'commander';
import { type AuditOptions, auditCommand } from './commands/audit.js';
import { keygenCommand } from './commands/keygen.js';
import { controlCommand } from './commands/control.js';
import { demoCommand } from './commands/demo.js';
import { doctorCommand } from './commands/doctor.js';
import { EXIT, execCommand } from './commands/exec.js';
import { type RulesTestOptions, rulesCheckCommand, rulesTestCommand } from './commands/rules.js';
import { runCommand } from './commands/run.js';
import { UsageError } from './commands/setup.js';
import { parseMetaPairs } from './meta.js';
import { type TailOptions, tailCommand } from './commands/tail.js';
import { type NatsTailOptions, natsTailCommand } from './commands/tail-nats.js';
import { DEFAULTS } from './config/schema.js';
import { type ConfigFlags, options } from './config/load.js';
import { VERSION } from './version.js';

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

/** how tail and audit reach the JetStream stream (with --nats) */
function natsReading(c: Command): Command {
  return c
    .option('--nats-creds <file>', 'with --nats: a credentials file')
    .option('--nats-token <token>', 'with --nats: a token (also REDLINE_NATS_TOKEN)')
    .option('--nats-stream <name>', `with --nats: the stream (default ${DEFAULTS.natsStream})`)
    .option('--nats-prefix <prefix>', `with --nats: the subjects' prefix (default ${DEFAULTS.natsPrefix})`);
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('redline')
    .description('A tripwire for AI self-replication experiments')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError();
  let result: number | Promise<number> = 0;

  // the shared options come from the options table (config/options.ts); --trial names this one run, so no config file sets it
  options
    .addTo(program.command('exec').description('run CMD as the subject of one monitored trial'), 'exec')
    .option('--trial <id>', 'trial id (default: generated)')
    .option('--meta <key=value>', 'trial metadata in its start record (repeatable: --meta model=A --meta seed=3)', collect)
    .argument('<command...>', 'the command to run, after --')
    .action((command: string[], opts: ConfigFlags & { trial?: string; meta?: string[] }) => {
      result = execCommand(command, opts).then((r) => {
        process.stderr.write(`redline: trial ${r.trial} ${r.code === EXIT.tripped ? 'TRIPPED' : 'clean'}; log ${r.log}\n`);
        return r.code;
      });
    });

  options.addTo(program.command('run').description('the long-running daemon'), 'run').action((opts: ConfigFlags) => {
    result = runCommand(opts);
  });

  const rules = program.command('rules').description('rule files');
  rules
    .command('check')
    .argument('<path...>', 'rule files or folders')
    .description('load rules with the daemon’s loader; print every problem as file:line:col')
    .action((paths: string[]) => {
      result = rulesCheckCommand(paths);
    });
  rules
    .command('test')
    .argument('<input...>', 'audit logs recorded with --record-events, or fixture files of {event, proc} objects (NDJSON)')
    .description('run a rule pack over recorded events and print what would have fired (and, for a log, what fired live)')
    .option('--rules <path>', 'rule file or folder (repeatable; default: the shipped rules/)', collect)
    .option('--trial <id>', 'only this trial')
    .option('--json', 'machine-readable output')
    .action((inputs: string[], opts: RulesTestOptions) => {
      result = rulesTestCommand(inputs, opts);
    });

  program
    .command('keygen')
    .description('write an Ed25519 key pair for --sign-key (FILE, 0600) and audit --pubkey (FILE.pub)')
    .argument('<file>', 'the private key file (never overwritten); the public key goes to FILE.pub')
    .action((file: string) => {
      result = keygenCommand(file);
    });

  const audit = program
    .command('audit')
    .description('verify the hash chain, rebuild trials, print timeline and verdicts')
    .argument('[log...]', 'audit log files, folders of them, or a quoted glob, in any order: sorted into chains (or --nats URL --host H)')
    .option('--json', 'machine-readable output (schema redline-audit/1, see README)')
    .option('--markdown', 'a Markdown report (for a paper’s appendix)')
    .option('--html <file>', 'also write a self-contained HTML report with a timeline per trial')
    .option('--by <keys>', 'group the trials by these metadata keys, joined by commas (model,scenario): k/n replicated with a 95% Wilson interval, the worst case where the monitor was attacked')
    .option('--pubkey <file>', 'verify the seals with this public key (redline keygen); a record no valid seal covers exits 4')
    .option('--nats <url>', 'read one host\'s records from the JetStream stream instead of files (with --host)')
    .option('--host <host>', 'with --nats: whose chain to rebuild and verify');
  natsReading(audit).action((logs: string[], opts: AuditOptions) => {
      result = auditCommand(logs, opts);
    });

  program
    .command('config')
    .description('the config file')
    .command('schema')
    .description('print the config file’s JSON Schema (the keys of exec and run, spelled like the flags)')
    .action(() => {
      process.stdout.write(`${JSON.stringify(options.jsonSchema(), null, 2)}\n`);
    });

  program
    .command('doctor')
    .description('which sensors and actions work on this host, and why not')
    .option('--nvidia-smi <path>', 'the nvidia-smi binary to check')
    .action((opts: { nvidiaSmi?: string }) => {
      result = doctorCommand(process.stdout, opts.nvidiaSmi);
    });

  const tail = program
    .command('tail')
    .description('print the live stream from a running daemon, one JSON record per line')
    .option('--url <url>', `the stream (default ws://${DEFAULTS.runWs.host}:${DEFAULTS.runWs.port}/stream)`)
    .option('--token <token>', `the bearer token (also ${DEFAULTS.wsTokenEnv}, else the daemon's generated one on this host)`)
    .option('--since <seq>', 'replay from this record number first')
    .option('--follow', 'keep waiting when the daemon stops (default: end with it)')
    .option('--heartbeats', 'print the heartbeats (chain head) too')
    .option('--pretty', 'the readable form even when not on a terminal')
    .option('--nats <url>', 'read the JetStream stream the daemons publish to instead (all hosts, or --host)')
    .option('--host <host>', 'with --nats: one host\'s records');
  natsReading(tail).action((opts: TailOptions & Omit<NatsTailOptions, 'nats'> & { nats?: string }) => {
      result = opts.nats ? natsTailCommand({ ...opts, nats: opts.nats }) : tailCommand(opts);
    });

  const socketOpt = (c: Command) => c.option('--socket <path>', `the control socket (default ${DEFAULTS.socket})`);
  for (const [name, what] of [
    ['status', 'sensors and their health, subject, mode, counts, chain head'],
    ['freeze', 'freeze the subject now'],
    ['thaw', 'thaw the subject'],
    ['kill', 'freeze, then kill the subject'],
    ['reload', 'reload the rules (the old rules stay if the new ones do not load)'],
  ] as const) {
    socketOpt(program.command(name).description(`${what} (control socket)`)).action((opts: { socket?: string }) => {
      result = controlCommand({ cmd: name }, opts.socket);
    });
  }
  socketOpt(program.command('mode').description('switch a running daemon to observe or enforce (control socket)'))
    .addArgument(new Argument('<mode>').choices(['observe', 'enforce']))
    .action((mode: string, opts: { socket?: string }) => {
      result = controlCommand({ cmd: 'mode', mode }, opts.socket);
    });
  socketOpt(program.command('trial').description('mark a trial on a running daemon: trial start NAME [KEY=VALUE…] | trial end | trial meta GROUP KEY=VALUE… (control socket)'))
    .addArgument(new Argument('<action>').choices(['start', 'end', 'meta']))
    .argument('[name]', 'the trial name (start), or the sandbox group (meta)')
    .argument('[pairs...]', 'KEY=VALUE (meta; start: the trial\'s metadata)')
    .action((action: string, name: string | undefined, pairs: string[], opts: { socket?: string }) => {
      if (action === 'start' && !name) throw new UsageError('trial start needs a NAME');
      if (action === 'meta') {
        if (!name || pairs.length === 0) throw new UsageError('trial meta needs a GROUP and at least one KEY=VALUE');
        const meta = parseMetaPairs(pairs);
        if (typeof meta === 'string') throw new UsageError(`trial meta: ${meta}`);
        result = controlCommand({ cmd: 'trial', action, group: name, meta }, opts.socket);
        return;
      }
      // trial start NAME key=value…: the metadata goes into the start record
      const meta = action === 'start' && pairs.length > 0 ? parseMetaPairs(pairs) : undefined;
      if (typeof meta === 'string') throw new UsageError(`trial start: ${meta}`);
      result = controlCommand({ cmd: 'trial', action, ...(name ? { name } : {}), ...(meta ? { meta } : {}) }, opts.socket);
    });

  program
    .command('demo')
    .description('run a scripted replication attempt under monitoring and show what was caught')
    .action(() => {
      result = demoCommand();
    });

  try {
    await program.parseAsync(argv);
    return await result;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT.usage;
    if (err instanceof UsageError) {
      process.stderr.write(`redline: ${err.message}\n`);
      return EXIT.usage;
    }
    process.stderr.write(`redline: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
