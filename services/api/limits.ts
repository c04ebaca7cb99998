/** The largest message the local API (the daemon's unix socket) takes or gives: a backup travels in one. */
export const LOCAL_API_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** The gRPC options that set it, on the daemon's server and the CLI's local client alike. */
export const LOCAL_API_MESSAGE_OPTIONS = {
  'grpc.max_receive_message_length': LOCAL_API_MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': LOCAL_API_MAX_MESSAGE_BYTES,
} as const;
