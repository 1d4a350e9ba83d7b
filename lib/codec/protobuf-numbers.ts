import $protobuf from 'protobufjs/minimal.js';

// 64-bit fields decode as JS numbers, not Long objects. Must run before the
// generated module evaluates (it reads util.Long for field defaults); values
// beyond 2^53 then fail the codec's safe-integer checks instead of wrapping.
$protobuf.util.Long = undefined as unknown as typeof $protobuf.util.Long;
$protobuf.configure();
