#!/usr/bin/env node
// Launcher for the anx-runtime CLI: registers tsx in this process so the TypeScript entry runs with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../runtime/cli/main.ts');
