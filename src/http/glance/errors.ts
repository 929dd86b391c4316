import { STATUS_CODES } from 'node:http';
import { ERRORS, VitrineError } from '../../domain/errors';

/**
 * Glance-shaped errors. Glance renders errors with webob, which picks the body from the
 * `Accept` header: HTML for a missing header or `*\/*` (what glanceclient and requests
 * send), JSON only when JSON is asked for, plain text otherwise (the SDK sends an empty
 * Accept on PATCH). glanceclient parses JSON errors as `{<any>: {"message": …}}` and
 * crashes on webob's flat JSON, so defaulting to HTML is what keeps it working.
 */
export class GlanceHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
    /**
     * Where webob puts the message: Glance mostly raises `HTTPXxx(explanation=msg)`, but a
     * few sites pass it positionally, as the *detail* under webob's default explanation,
     * and clients print the two differently.
     */
    readonly placement: 'explanation' | 'detail' = 'explanation',
  ) {
    super(message);
    this.name = 'GlanceHttpError';
  }
}

export function glanceError(status: number, message: string, headers?: Record<string, string>): GlanceHttpError {
  return new GlanceHttpError(status, message, headers);
}

export const notFound = (message: string) => glanceError(404, message);
export const badRequest = (message: string) => glanceError(400, message);
export const forbidden = (message: string) => glanceError(403, message);
export const conflict = (message: string) => glanceError(409, message);

/** Glance's `raise webob.exc.HTTPForbidden(msg)` (403) or `HTTPConflict(msg)` (409): the message as webob's detail. */
export function asDetail(status: 403 | 409, message: string): GlanceHttpError {
  return new GlanceHttpError(status, message, {}, 'detail');
}

export function imageNotFound(id: string): GlanceHttpError {
  return notFound(`No image found with ID ${id}`);
}

/** A domain error as the facade reports it: the registry's status, the domain's message. */
export function fromVitrineError(err: VitrineError): GlanceHttpError {
  return glanceError(ERRORS[err.code].status, err.message);
}

/** webob's default explanations, shown above a detail. */
const WEBOB_EXPLANATIONS: Readonly<Record<number, string>> = {
  403: 'Access was denied to this resource.',
  409: 'There was a conflict when trying to complete your request.',
};

/** webob's titles where they differ from Node's (older RFC wording). */
const WEBOB_TITLES: Readonly<Record<number, string>> = {
  413: 'Request Entity Too Large',
  416: 'Requested Range Not Satisfiable',
};

export function statusLine(status: number): { code: string; title: string } {
  const title = WEBOB_TITLES[status] ?? STATUS_CODES[status] ?? 'Error';
  return { code: `${status} ${title}`, title };
}

export type ErrorFormat = 'html' | 'json' | 'text';

/**
 * webob's choice between its two offers (text/html first, then application/json) under
 * the Accept header; anything else, including an empty or unparseable header, is text.
 */
export function errorFormat(accept: string | undefined): ErrorFormat {
  if (accept === undefined) return 'html';
  const ranges = accept.split(',').map((part) => {
    const [range, ...params] = part.trim().split(';').map((s) => s.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith('q='));
    return { range, q: qParam === undefined ? 1 : Number(qParam.slice(2)) };
  }).filter((r) => r.range);
  // Each offer takes the q of the most specific range that matches it.
  const qualityOf = (type: string): number => {
    let best = { specificity: 0, q: 0 };
    for (const { range, q } of ranges) {
      const specificity = range === type ? 3 : range === `${type.split('/')[0]}/*` ? 2 : range === '*/*' ? 1 : 0;
      if (specificity > best.specificity) best = { specificity, q: Number.isFinite(q) ? q : 0 };
    }
    return best.q;
  };
  const html = qualityOf('text/html');
  const json = qualityOf('application/json');
  // On equal quality the first offer (text/html) wins, as in webob.
  if (html > 0 && html >= json) return 'html';
  return json > 0 ? 'json' : 'text';
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;');
}

/**
 * The body webob renders, in each format: its template `${explanation}<br /><br />\n${detail}\n\n`
 * (escaped in HTML, raw in JSON, tags stripped and newlines turned to spaces in plain text).
 */
export function renderError(format: ErrorFormat, status: number, message: string, placement: GlanceHttpError['placement'] = 'explanation'): { contentType: string; body: string } {
  const { code, title } = statusLine(status);
  const [explanation, detail] = placement === 'detail' ? [WEBOB_EXPLANATIONS[status] ?? '', message] : [message, ''];
  const body = (escape: (text: string) => string) => `${escape(explanation)}<br /><br />\n${escape(detail)}\n\n`;
  switch (format) {
    case 'html':
      return {
        contentType: 'text/html; charset=UTF-8',
        body: `<html>\n <head>\n  <title>${code}</title>\n </head>\n <body>\n  <h1>${code}</h1>\n  ${body(escapeHtml)}\n </body>\n</html>`,
      };
    case 'json':
      // webob's json body keeps the HTML line breaks of its template in `message`, but does
      // not escape the message (Glance: "Attribute 'status' is read-only.<br /><br />\n\n\n").
      return { contentType: 'application/json', body: JSON.stringify({ message: body((t) => t), code, title }) };
    case 'text':
      return { contentType: 'text/plain; charset=UTF-8', body: `${code}\n\n${body((t) => t).replace(/\n/g, ' ').replace(/<br \/>/g, '\n')}` };
  }
}
