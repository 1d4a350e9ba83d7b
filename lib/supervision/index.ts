export { AssignmentTracker, STATUS_TIMER, type AssignmentOrder, type StatusFields } from './assignments.js';
export { PermitHolder } from './release-permit.js';
