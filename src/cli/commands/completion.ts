/** `mpk completion bash|zsh|fish` */
import { PackError } from '../../errors.js';
import { COMMANDS } from '../commands-table.js';
import { bashScript, completionCommands } from '../completion.js';
import { fishScript, zshScript } from '../completion-zsh-fish.js';
import type { CommandSpec } from '../context.js';

const SHELLS = { bash: bashScript, zsh: zshScript, fish: fishScript };

export const completionCommand: CommandSpec = {
  name: 'completion',
  usage: 'mpk completion bash|zsh|fish',
  summary:
    'Print a completion script for the shell: commands, their options, choices, and model names from\n' +
    'the store. Load it for this shell, or save it where the shell looks:\n' +
    '  bash  source <(mpk completion bash)     or  mpk completion bash > ~/.local/share/bash-completion/completions/mpk\n' +
    '  zsh   source <(mpk completion zsh)      or  mpk completion zsh > "${fpath[1]}/_mpk"\n' +
    '  fish  mpk completion fish | source      or  mpk completion fish > ~/.config/fish/completions/mpk.fish',
  help: [],
  options: {},
  args: [1, 1],
  async run(ctx, _v, [shell]) {
    const make = SHELLS[shell as keyof typeof SHELLS];
    if (!Object.hasOwn(SHELLS, shell!) || !make) {
      throw new PackError('USAGE', `completion: unknown shell ${JSON.stringify(shell)}`, { hint: `use one of ${Object.keys(SHELLS).join(', ')}` });
    }
    ctx.stdout.write(make(await completionCommands(COMMANDS)));
    return 0;
  },
};
