// What a changed file is to the trial: a system file (the host's programs, libraries and
// configuration), one of the model's own files (its registered weights, anything in a folder
// given as the weights), or a file the user
// protected (--protect-path: the serving script, the model's folder). Matched by name, the
// name as the process gave it and the name it really reaches, and by device and inode where
// the file can still be looked at (a rename, a chmod): a hard link or a symlink to a
// protected file is that file.
import { realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** the folders whose files are the system's */
export const SYSTEM_ROOTS = ['/bin', '/sbin', '/usr', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/boot'] as const;
// made and replaced in the ordinary course under those (an interpreter's byte-code cache)
const ORDINARY = [/\/__pycache__(\/|$)/];

export interface Area {
  area: 'system' | 'model' | 'protected';
  /** the folder or file of the area the path is under */
  root: string;
}

/** `path` is `root` or inside it */
export function under(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/** the path with its folder's symlinks resolved (the file itself may be gone): /lib/x → /usr/lib/x */
export function realName(path: string): string | null {
  try {
    return join(realpathSync.native(dirname(path)), basename(path));
  } catch {
    return null;
  }
}

export interface AreaSources {
  /** is (dev, ino) one of the model's own registered files (not a copy made since)? */
  modelFile(dev: number, ino: number): string | null;
  /** the model's registered files by path */
  modelPath(path: string): boolean;
}

export class ProtectedAreas {
  private readonly protectIds = new Map<string, string>();

  /**
   * protect: files and folders given by the user (their identity is taken now); modelFolders:
   * the folders given as the model's weights (everything in them is the model's: its config,
   * its tokenizer, the weights)
   */
  constructor(private readonly sources: AreaSources, private readonly protect: readonly string[] = [], private readonly modelFolders: readonly string[] = []) {
    for (const p of protect) {
      try {
        const st = statSync(p);
        if (st.isFile()) this.protectIds.set(`${st.dev}:${st.ino}`, p);
      } catch {
        // a protected path that is not there yet is matched by name
      }
    }
  }

  /**
   * what `path` (and the file (dev, ino), when known) is, or null when none of them; `real`:
   * the name it really reaches, when the caller resolved it already (null: it could not be)
   */
  classify(path: string | undefined, id?: { dev: number; ino: number }, real?: string | null): Area | null {
    if (id) {
      const model = this.sources.modelFile(id.dev, id.ino);
      if (model) return { area: 'model', root: model };
      const prot = this.protectIds.get(`${id.dev}:${id.ino}`);
      if (prot) return { area: 'protected', root: prot };
    }
    if (!path) return null;
    const names = [path];
    const reached = real === undefined ? realName(path) : real;
    if (reached && reached !== path) names.push(reached);
    for (const n of names) {
      if (this.sources.modelPath(n)) return { area: 'model', root: n };
      const folder = this.modelFolders.find((r) => under(n, r));
      if (folder) return { area: 'model', root: folder };
      const prot = this.protect.find((r) => under(n, r));
      if (prot) return { area: 'protected', root: prot };
    }
    for (const n of names) {
      if (ORDINARY.some((re) => re.test(n))) return null;
      const sys = SYSTEM_ROOTS.find((r) => under(n, r));
      if (sys) return { area: 'system', root: sys };
    }
    return null;
  }
}
