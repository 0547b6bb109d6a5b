import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Labfile } from '../../lab/labfile/schema.js';
import {
  commandNames,
  commandSpec,
  flagsOf,
  valueOptions,
  wordRules,
  type CommandName,
  type WordRule,
  type Words,
} from '../spec.js';
import { UsageError } from '../usage-error.js';

const HELP = `Usage: lab completion bash|zsh|fish

Prints a completion script for the shell: lab's commands and their options, and the
names of the lab in reach (nodes for ssh, reset and checkpoint restore; templates for
image build; checkpoints), asked of lab as you type. lab reads the Labfile and the
lab's folder for them, never libvirt.

  bash  add to ~/.bashrc:  source <(lab completion bash)
        (or save it as ~/.local/share/bash-completion/completions/lab)
  zsh   save it as _lab in a folder of $fpath: for ~/.zfunc, as below, add
        fpath=(~/.zfunc $fpath) to ~/.zshrc before compinit; or add to ~/.zshrc,
        after compinit:  source <(lab completion zsh)
  fish  save it as ~/.config/fish/completions/lab.fish

Examples:
  source <(lab completion bash)
  mkdir -p ~/.zfunc && lab completion zsh > ~/.zfunc/_lab
  mkdir -p ~/.config/fish/completions && lab completion fish > ~/.config/fish/completions/lab.fish
`;

const SHELLS = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;

export async function run(argv: string[]): Promise<number> {
  // Imported here: lab __complete, below, runs on every TAB and needs none of it.
  const { parseFlags } = await import('../args.js');
  const flags = parseFlags(argv, {}, HELP);
  if (!flags) return 0;
  const [shell, ...extra] = flags.positionals;
  if (shell === undefined || !Object.hasOwn(SHELLS, shell) || extra.length)
    throw new UsageError(
      shell === undefined ? 'which shell? bash, zsh or fish' : `unknown shell "${shell}": bash, zsh or fish`,
      { hint: HELP.split('\n')[0] },
    );
  process.stdout.write(SHELLS[shell as keyof typeof SHELLS]());
  return 0;
}

/** What a completion word may safely be: a shell splits the answers on white space. */
const PLAIN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * `lab __complete nodes|templates|checkpoints|labs [-f FILE | --lab NAME]`: those names,
 * one a line, for the lab in reach. Reads the Labfile and the lab's folder, never
 * libvirt; says nothing and exits 0 when there are none or anything goes wrong.
 */
export async function complete(argv: string[]): Promise<number> {
  let words: string[] = [];
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { file: { type: 'string', short: 'f' }, lab: { type: 'string' } },
      strict: false,
      allowPositionals: true,
    });
    words = await answer(positionals[0], values);
  } catch {
    // A completion prints no error: the shell would show it in the middle of the line.
  }
  process.stdout.write(
    words
      .filter((w) => PLAIN.test(w))
      .map((w) => `${w}\n`)
      .join(''),
  );
  return 0;
}

/** The names of `kind`; each kind loads only the modules it needs. */
async function answer(
  kind: string | undefined,
  values: { file?: unknown; lab?: unknown },
): Promise<string[]> {
  switch (kind) {
    case 'nodes': {
      const { expandNodes } = await import('../../lab/plan/node-groups.js');
      return expandNodes(await labfileInReach(values)).map((n) => n.name);
    }
    case 'templates':
      return (await import('../../lab/templates/load.js')).listTemplateNames();
    case 'checkpoints': {
      const { readCheckpoints } = await import('../../lab/store/checkpoints.js');
      const { LabDir } = await import('../../lab/store/lab-dir.js');
      const book = await readCheckpoints(new LabDir((await labfileInReach(values)).name).private);
      return Object.keys(book.checkpoints).sort();
    }
    case 'labs':
      return (await import('../find-lab.js')).knownLabs().map((l) => l.name);
    default:
      return [];
  }
}

/** The Labfile of the lab in reach, its shape only: no template is read. */
async function labfileInReach(values: { file?: unknown; lab?: unknown }): Promise<Labfile> {
  const { findLabfile } = await import('../find-lab.js');
  const { parseLabfileShape } = await import('../../lab/labfile/parse.js');
  const file = findLabfile(values, { reads: true });
  const shape = parseLabfileShape(readFileSync(file, 'utf8'), file);
  if (!shape.ok) throw new Error(`${file} is not a valid Labfile`);
  return shape.value;
}

/** Words as the scripts pass them: @nodes (asked of lab), @file, @dir, or the words themselves. */
function scriptWords(w: Words): string {
  if (typeof w !== 'string') return w.join(' ');
  return w === 'text' ? '' : `@${w}`;
}

/** The value options grouped by what they take: [flags, words]. */
function valueCases(): [string[], string][] {
  const byWords = new Map<string, string[]>();
  for (const [flag, words] of valueOptions()) {
    const key = scriptWords(words);
    byWords.set(key, [...(byWords.get(key) ?? []), flag]);
  }
  return [...byWords].map(([words, flags]) => [flags, words]);
}

/** The commands `lab` completes, `help` included: those with words to offer, each with its rules. */
function ruleSets(): [CommandName | 'help', WordRule[]][] {
  return ([...commandNames(), 'help'] as const)
    .map((c): [CommandName | 'help', WordRule[]] => [c, wordRules(c)])
    .filter(([, rules]) => rules.length > 0);
}

/** A single-quoted word for bash and zsh. */
const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
/** A single-quoted word for fish, which escapes inside single quotes. */
const fishq = (s: string) => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;

const HELP_SUMMARY = 'help for a command: lab help COMMAND';

function bashScript(): string {
  const rules = ruleSets().map(([cmd, rs]) => {
    const conds = rs.map((r) => {
      const at = `((n ${r.more ? '>=' : '=='} ${r.index}))`;
      const cond = r.verb ? `[[ \${rest[0]} == ${r.verb} ]] && ${at}` : at;
      return `${cond}; then _lab_offer ${shq(scriptWords(r.words))}`;
    });
    return `    ${cmd})\n      if ${conds.join('\n      elif ')}\n      fi ;;`;
  });
  return `# bash completion for lab: source <(lab completion bash), or save it as
# ~/.local/share/bash-completion/completions/lab

# Sets COMPREPLY to the words of $1 that begin with $cur: @nodes, @templates, @checkpoints
# and @labs asked of lab (with the -f or --lab given, in $where), @file, @dir, or the words.
_lab_offer() {
  case $1 in
    @file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    @dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    @*) mapfile -t COMPREPLY < <(compgen -W "$(command lab __complete "\${1#@}" "\${where[@]}" 2>/dev/null)" -- "$cur") ;;
    *) mapfile -t COMPREPLY < <(compgen -W "$1" -- "$cur") ;;
  esac
}

_lab_complete() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd= pending= w i n
  local -a where=() rest=()
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if [[ -n $pending ]]; then
      # bash splits --file=x at the = (COMP_WORDBREAKS): the = is not the value
      [[ $w == = ]] && continue
      case $pending in -f | --file | --lab) where+=("$pending" "$w") ;; esac
      pending=
      continue
    fi
    case $w in
      --) return 0 ;;
      ${[...valueOptions().keys()].join(' | ')}) pending=$w ;;
      -*) ;;
      *) if [[ -z $cmd ]]; then cmd=$w; else rest+=("$w"); fi ;;
    esac
  done
  [[ $cur == = ]] && cur=
  if [[ -n $pending ]]; then
    case $pending in
${valueCases()
  .map(([flags, words]) => `      ${flags.join(' | ')}) _lab_offer ${shq(words)} ;;`)
  .join('\n')}
    esac
    return 0
  fi
  if [[ $cur == -* ]]; then
    case $cmd in
${commandNames()
  .map((c) => `      ${c}) _lab_offer ${shq(flagsOf(c).join(' '))} ;;`)
  .join('\n')}
      *) _lab_offer ${shq(flagsOf(undefined).join(' '))} ;;
    esac
    return 0
  fi
  if [[ -z $cmd ]]; then
    _lab_offer ${shq([...commandNames(), 'help'].join(' '))}
    return 0
  fi
  n=\${#rest[@]}
  case $cmd in
${rules.join('\n')}
  esac
  return 0
}

complete -F _lab_complete lab
`;
}

function zshScript(): string {
  const rules = ruleSets().map(([cmd, rs]) => {
    const conds = rs.map((r) => {
      const at = `(( n ${r.more ? '>=' : '=='} ${r.index} ))`;
      const cond = r.verb ? `[[ \${rest[1]} == ${r.verb} ]] && ${at}` : at;
      return `${cond}; then _lab_offer ${shq(scriptWords(r.words))}`;
    });
    return `    (${cmd})\n      if ${conds.join('\n      elif ')}\n      fi ;;`;
  });
  const described = [...commandNames().map((c) => [c, commandSpec(c).summary]), ['help', HELP_SUMMARY]];
  return `#compdef lab
# zsh completion for lab: save it as _lab in a folder of $fpath, or, after compinit,
# source <(lab completion zsh)

# Offers the words of $1: @nodes, @templates, @checkpoints and @labs asked of lab (with
# the -f or --lab given, in $where), @file, @dir, or the words.
_lab_offer() {
  local -a found
  case $1 in
    (@file) _files ;;
    (@dir) _files -/ ;;
    (@*)
      found=(\${(f)"$(command lab __complete \${1#@} $where 2>/dev/null)"})
      compadd -- $found ;;
    (*)
      found=(\${=1})
      compadd -- $found ;;
  esac
}

_lab() {
  local cur=\${words[CURRENT]} cmd= pending= w i n
  local -a where rest commands
  commands=(
${described.map(([c, s]) => `    ${shq(`${c}:${s!.replace(/:/g, '\\:')}`)}`).join('\n')}
  )
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    if [[ -n $pending ]]; then
      case $pending in (-f | --file | --lab) where+=($pending $w) ;; esac
      pending=
      continue
    fi
    case $w in
      (--) return 1 ;;
      (${[...valueOptions().keys()].join(' | ')}) pending=$w ;;
      (--file=* | --lab=*) where+=($w) ;;
      (-*) ;;
      (*) if [[ -z $cmd ]]; then cmd=$w; else rest+=($w); fi ;;
    esac
  done
  if [[ -z $pending && $cur == --*=* ]]; then
    pending=\${cur%%=*}
    compset -P '*='
  fi
  if [[ -n $pending ]]; then
    case $pending in
${valueCases()
  .map(([flags, words]) => `      (${flags.join(' | ')}) _lab_offer ${shq(words)} ;;`)
  .join('\n')}
    esac
    return
  fi
  if [[ $cur == -* ]]; then
    case $cmd in
${commandNames()
  .map((c) => `      (${c}) _lab_offer ${shq(flagsOf(c).join(' '))} ;;`)
  .join('\n')}
      (*) _lab_offer ${shq(flagsOf(undefined).join(' '))} ;;
    esac
    return
  fi
  if [[ -z $cmd ]]; then
    _describe -t commands 'lab command' commands
    return
  fi
  n=\${#rest}
  case $cmd in
${rules.join('\n')}
  esac
}

# Autoloaded from $fpath, this file is _lab's body: define, then complete. Sourced: register.
if [[ \${funcstack[1]} == _lab ]]; then
  _lab "$@"
elif (( \${+functions[compdef]} )); then
  compdef _lab lab
fi
`;
}

function fishScript(): string {
  const rules = ruleSets().map(([cmd, rs]) => {
    const conds = rs.map((r) => {
      const at = `test $n ${r.more ? '-ge' : '-eq'} ${r.index}`;
      const cond = r.verb ? `test "$rest[1]" = ${r.verb}; and ${at}` : at;
      return `${cond}\n            __lab_offer ${fishq(scriptWords(r.words))} "$cur" $where`;
    });
    return `        case ${cmd}\n            if ${conds.join('\n            else if ')}\n            end`;
  });
  const described = [...commandNames().map((c) => [c, commandSpec(c).summary]), ['help', HELP_SUMMARY]];
  return `# fish completion for lab: save it as ~/.config/fish/completions/lab.fish, or
# lab completion fish | source

# Prints the words of $argv[1] for the word $argv[2]: @nodes, @templates, @checkpoints and
# @labs asked of lab (with the -f or --lab given, $argv[3..]), @file, @dir, or the words.
function __lab_offer
    switch $argv[1]
        case @file
            __fish_complete_path $argv[2]
        case @dir
            __fish_complete_directories $argv[2]
        case '@*'
            command lab __complete (string sub -s 2 -- $argv[1]) $argv[3..-1] 2>/dev/null
        case ''
        case '*'
            string split ' ' -- $argv[1]
    end
end

function __lab_commands
    printf '%s\\t%s\\n' \\
${described.map(([c, s]) => `        ${c} ${fishq(s!)}`).join(' \\\n')}
end

function __lab_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l cmd
    set -l pending
    set -l where
    set -l rest
    for w in $tokens[2..-1]
        if test -n "$pending"
            switch $pending
                case -f --file --lab
                    set -a where $pending $w
            end
            set pending
            continue
        end
        switch $w
            case --
                return
            case ${[...valueOptions().keys()].join(' ')}
                set pending $w
            case '--file=*' '--lab=*'
                set -a where $w
            case '-*'
            case '*'
                if test -z "$cmd"
                    set cmd $w
                else
                    set -a rest $w
                end
        end
    end
    set -l prefix
    if test -z "$pending"; and string match -q -- '--*=*' "$cur"
        set pending (string split -m 1 -- = "$cur")[1]
        set prefix "$pending="
        set cur (string split -m 1 -- = "$cur")[2]
    end
    if test -n "$pending"
        set -l words
        switch $pending
${valueCases()
  .map(([flags, words]) => `            case ${flags.join(' ')}\n                set words ${fishq(words)}`)
  .join('\n')}
        end
        for v in (__lab_offer "$words" "$cur" $where)
            printf '%s%s\\n' $prefix $v
        end
        return
    end
    if string match -q -- '-*' "$cur"
        switch "$cmd"
${commandNames()
  .map((c) => `            case ${c}\n                __lab_offer ${fishq(flagsOf(c).join(' '))}`)
  .join('\n')}
            case '*'
                __lab_offer ${fishq(flagsOf(undefined).join(' '))}
        end
        return
    end
    if test -z "$cmd"
        __lab_commands
        return
    end
    set -l n (count $rest)
    switch $cmd
${rules.join('\n')}
    end
end

complete -c lab -e
complete -c lab -f -a '(__lab_complete)'
`;
}
