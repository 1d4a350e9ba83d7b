/**
 * Assertions cost nothing while they hold: lib/assert.ts takes a message built
 * from values as a function, called only on failure.
 *
 *  - assertions/lazy-message: the message of `assert(condition, message)` is a
 *    string literal, a template literal without substitutions or an arrow
 *    function; a template literal with values, a concatenation or a call
 *    would format on every call (on the simulator's hot path that was a
 *    quarter of its time).
 *
 * Plain ESM, no dependencies beyond ESLint itself.
 */

/** Expressions that compute a string each time; a name or a property only reads one. */
const EAGER = new Set(['TemplateLiteral', 'BinaryExpression', 'CallExpression', 'ConditionalExpression', 'LogicalExpression']);

const lazyMessage = {
  meta: {
    type: 'problem',
    docs: { description: 'The message of assert() is a literal or a function that builds it on failure' },
    schema: [],
    messages: {
      eager: "assert()'s message is built on every call; pass `() => …` so it is built only when the assertion fails",
    },
  },
  create(context) {
    return {
      CallExpression(node) {
        if (node.callee.type !== 'Identifier' || node.callee.name !== 'assert' || node.arguments.length < 2) return;
        const message = node.arguments[1];
        const literal = message.type === 'Literal' || (message.type === 'TemplateLiteral' && message.expressions.length === 0);
        if (!literal && EAGER.has(message.type)) context.report({ node: message, messageId: 'eager' });
      },
    };
  },
};

export const rules = { 'lazy-message': lazyMessage };

export default {
  meta: { name: 'assertions', version: '1.0.0' },
  rules,
};
