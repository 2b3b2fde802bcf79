#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.trim_threshold=131072 node --max-semi-space-size=2
import { main } from '../dist/agent/cli/cli.js';

process.exitCode = await main(process.argv.slice(2));
