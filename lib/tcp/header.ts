/** IPv4 (20) + TCP (20) + timestamp option (12): a 1448-byte MSS fills a 1500-byte MTU. */
export const TCP_IP_HEADER_BYTES = 52;
