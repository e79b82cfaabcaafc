import type { Request } from 'express';

/** Where the installation is reachable: PUBLIC_URL, else the address the client used. */
export function publicBase(req: Request, publicUrl: string | undefined): string {
  return publicUrl ?? `${req.protocol}://${req.get('host')}`;
}
