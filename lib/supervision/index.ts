export { AssignmentTracker, type AssignmentOrder, type StatusFields } from './assignments.js';
export { PermitHolder } from './release-permit.js';
