/**
 * The one place the bootstrap feature learns about the Python device client
 * (src/client/ztp_client.py and its generated text module, written on another branch). While
 * `EMBEDDED_PYTHON_CLIENT` is undefined, `GET /ztp/bootstrap/python` serves a small Python
 * bootstrap that fetches `{server}/ztp/client.py` and runs it; once it is pointed at the
 * generated module, the client itself is served with the URL and token filled in.
 */

/** The Python client's text for this server (and a device token, when one was presented). */
export type PythonClientText = (server: string, token: string | undefined) => string;

export const EMBEDDED_PYTHON_CLIENT: PythonClientText | undefined = undefined;
