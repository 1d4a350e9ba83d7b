export { buildWorld, runWorld, crashHost, applyFaultStep, goodputBitsPerSec, primaryHostOf, backupHostOf, type World, type WorldHooks, type Replication, type SimHost, type HostServices } from './world.js';
export { simulate, summarize, guestVmsOf, checkpointersOf, failoverStatsOf, promotionsOf } from './run.js';
export { runVoprSeed, voprScenario, type VoprOutcome, type VoprScenario, type Invariant } from './vopr.js';
export { planFaults, faultSteps, type Fault, type FaultStep } from './faults.js';
export { PLANTED_BUGS, type PlantedBug } from '../lib/planted-bugs.js';
