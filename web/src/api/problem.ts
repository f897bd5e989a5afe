// Problem+json (RFC 9457) from the server, and the failures the phone tells apart.

export interface ProblemError {
  loc: (string | number)[];
  msg: string;
  type?: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: ProblemError[];
}

/** The server answered with an error status. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;

  constructor(status: number, problem: Problem | null) {
    super(problem ? `${status} ${problem.title}: ${problem.detail}` : `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
  }
}

/** No answer at all: offline, DNS, a dropped connection. */
export class NetworkError extends Error {
  constructor(message = "network unreachable") {
    super(message);
    this.name = "NetworkError";
  }
}

/** The refresh token was refused: the user must sign in again (their queue is kept). */
export class LoginNeeded extends Error {
  constructor(message = "login needed") {
    super(message);
    this.name = "LoginNeeded";
  }
}

export async function problemOf(response: Response): Promise<Problem | null> {
  const type = response.headers.get("Content-Type") ?? "";
  if (!type.includes("json")) return null;
  try {
    const body = (await response.json()) as Partial<Problem>;
    return {
      type: String(body.type ?? "about:blank"),
      title: String(body.title ?? ""),
      status: Number(body.status ?? response.status),
      detail: String(body.detail ?? ""),
      ...(Array.isArray(body.errors) ? { errors: body.errors } : {}),
    };
  } catch {
    return null;
  }
}

/** The last part of a problem type URI (`.../problems/validation` -> `validation`), for localised text. */
export function problemSlug(problem: Problem | null): string {
  if (!problem) return "unknown";
  const parts = problem.type.split("/");
  return parts[parts.length - 1] || "unknown";
}

/** Item ids named by a 422's errors[].loc (the last string part), in order, without repeats. */
export function itemIdsOf(problem: Problem | null): string[] {
  const ids: string[] = [];
  for (const error of problem?.errors ?? []) {
    const last = [...error.loc].reverse().find((part) => typeof part === "string");
    if (typeof last === "string" && !ids.includes(last)) ids.push(last);
  }
  return ids;
}
