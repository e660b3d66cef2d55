#!/usr/bin/env node
// Compile contracts/*.sol with the pinned solc-js (no download: the compiler ships in the npm
// package) and write one JSON file per contract: abi, bytecode, and the exact compiler version
// and settings, so a fresh compile can be compared byte for byte with the committed build.
//
// usage: node tools/compile.js [OUTDIR]   (default: hub_stub/contracts, shipped as package data)
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

const ROOT = path.resolve(__dirname, '..');
const SOURCES = ['WorldlandPayments.sol', 'TestToken.sol'];
// paris: no PUSH0 or transient storage, so the bytecode also runs on EVM chains that lag
// behind Ethereum's hardforks. The optimizer runs value favours cheap calls over small code.
const SETTINGS = {
  evmVersion: 'paris',
  optimizer: { enabled: true, runs: 10000 },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

function main() {
  const outDir = path.resolve(process.argv[2] || path.join(ROOT, 'hub_stub', 'contracts'));
  const sources = {};
  for (const name of SOURCES) {
    sources[name] = { content: fs.readFileSync(path.join(ROOT, 'contracts', name), 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  let failed = false;
  for (const message of output.errors || []) {
    process.stderr.write(message.formattedMessage);
    // Warnings fail the build too: a contract that holds money compiles clean.
    failed = true;
  }
  if (failed) {
    process.exit(1);
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of SOURCES) {
    for (const [contractName, contract] of Object.entries(output.contracts[name])) {
      if (contract.evm.bytecode.object === '') {
        continue; // an interface: nothing to deploy
      }
      const artifact = {
        contractName,
        sourceName: `contracts/${name}`,
        compiler: { name: 'solc-js', version: solc.version(), settings: SETTINGS },
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
        deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
      };
      const file = path.join(outDir, `${contractName}.json`);
      fs.writeFileSync(file, `${JSON.stringify(artifact, null, 2)}\n`);
      process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
    }
  }
}

main();
