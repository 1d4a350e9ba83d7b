export { AssignmentTracker, STATUS_TIMER, ignoresAssignment, type AssignmentOrder, type StatusFields } from './assignments.js';
export { PermitHolder } from './release-permit.js';
