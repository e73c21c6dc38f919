// The runtime's version, from package.json (bundled into the published build), so the CLI, API and events agree.
import pkg from '../package.json' with { type: 'json' };

export const VERSION: string = pkg.version;
