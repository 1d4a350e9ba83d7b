export { buildWorld, runWorld, crashHost, applyFaultStep, goodputBitsPerSec, HOSTS, type World, type WorldHooks, type Replication } from './world.js';
export { simulate, summarize } from './run.js';
export { runVoprSeed, voprScenario, type VoprOutcome, type VoprScenario, type Invariant } from './vopr.js';
export { planFaults, faultSteps, type Fault, type FaultStep } from './faults.js';
export { OutputCommitOracle, CheckedHop } from './oracle.js';
export { PLANTED_BUGS, type PlantedBug } from './planted-bugs.js';
