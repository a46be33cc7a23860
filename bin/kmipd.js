#!/usr/bin/env node
// Entry point of the kmipd CLI (compiled TypeScript in dist/; `npm run build` makes it).
import { main } from '../dist/cli/main.js';

await main(process.argv);
