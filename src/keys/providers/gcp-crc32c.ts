/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum Cloud KMS uses for its data-integrity fields.
 * Node has CRC32 (zlib) but not CRC32C. The inputs here are a 32-byte data key, its associated data and a
 * ciphertext of about a hundred bytes, a few calls an hour, so a table in JavaScript (as Google's own storage
 * client uses) costs nothing that a native package would save.
 */
const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    table[byte] = crc >>> 0;
  }
  return table;
})();

export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = (TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
