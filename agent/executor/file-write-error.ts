/** A plan file could not be written; the message names the path, never the content. */
export class FileWriteError extends Error {
  override readonly name = "FileWriteError";
}
