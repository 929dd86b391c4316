import type { FastifyInstance } from 'fastify';
import type { ArtifactView } from '../../backends/port';
import { MEMBER_STATUSES, type MemberRecord, type MemberStatus } from '../../domain/artifact';
import { VitrineError } from '../../domain/errors';
import { isAdmin, type Principal } from '../../domain/policy';
import { isObject, readJson } from './body';
import { loadImage, param, type FacadeContext } from './context';
import { badRequest, conflict, forbidden, notFound } from './errors';
import { glanceTime } from '../../domain/glance-image';
import { principalOf, resource } from './router';

/**
 * Image sharing (Glance image_members.py). The checks run in Glance's order, in the facade,
 * because Glance's codes depend on it: image visible (404), image shared (403), caller's
 * role in the share (403), member exists (404), then the body's values (400).
 */
export function memberJson(member: MemberRecord): Record<string, string> {
  return {
    member_id: member.member,
    image_id: member.artifactId,
    status: member.status,
    created_at: glanceTime(member.createdAt),
    updated_at: glanceTime(member.updatedAt),
    schema: '/v2/schemas/member',
  };
}

function requireShared(image: ArtifactView, message: (reason: string) => string): void {
  if (image.visibility !== 'shared') throw forbidden(message('Only shared images have members.'));
}

export function registerMemberRoutes(scope: FastifyInstance, ctx: FacadeContext): void {
  const { backend } = ctx;

  async function membersOf(principal: Principal, image: ArtifactView): Promise<MemberRecord[]> {
    return (await backend.membersOf(principal, [image.id]))[0];
  }

  async function findMember(principal: Principal, image: ArtifactView, memberId: string): Promise<MemberRecord> {
    const member = (await membersOf(principal, image)).find((m) => m.member === memberId);
    if (!member) throw notFound(`${memberId} not found in the member list of the image ${image.id}.`);
    return member;
  }

  resource(scope, '/images/:imageId/members', {
    GET: async (request) => {
      const principal = principalOf(request);
      const image = await loadImage(ctx, principal, param(request, 'imageId'));
      requireShared(image, (reason) => `Not allowed to list members for image ${image.id}: ${reason}`);
      return { members: (await membersOf(principal, image)).map(memberJson), schema: '/v2/schemas/members' };
    },

    POST: async (request) => {
      const principal = principalOf(request);
      const body = await readJson(request, ctx.bodyLimit);
      if (body === undefined) throw badRequest('Body expected in request.');
      if (!isObject(body)) throw badRequest('Expected a member in the form: {"member": "image_id"}');
      if (!('member' in body)) throw badRequest('Member to be added not specified');
      if (!body.member) throw badRequest("Member can't be empty");
      if (typeof body.member !== 'string') throw badRequest('Expected a member in the form: {"member": "image_id"}');
      const image = await loadImage(ctx, principal, param(request, 'imageId'));
      requireShared(image, (reason) => reason);
      if (!isAdmin(principal) && image.owner !== principal.projectId) throw forbidden(`Not allowed to create members for image ${image.id}.`);
      try {
        return memberJson(await backend.addMember(principal, image.id, body.member));
      } catch (err) {
        if (err instanceof VitrineError && err.code === 'MEMBER_EXISTS') throw conflict(`Member ${body.member} is duplicated for image ${image.id}`);
        throw err;
      }
    },
  });

  resource(scope, '/images/:imageId/members/:memberId', {
    GET: async (request) => {
      const principal = principalOf(request);
      const image = await loadImage(ctx, principal, param(request, 'imageId'));
      // Glance turns every refusal here into 404.
      if (image.visibility !== 'shared') throw notFound('Only shared images have members.');
      return memberJson(await findMember(principal, image, param(request, 'memberId')));
    },

    PUT: async (request) => {
      const principal = principalOf(request);
      const body = await readJson(request, ctx.bodyLimit);
      if (body === undefined) throw badRequest('Body expected in request.');
      if (!isObject(body)) throw badRequest('Expected a status in the form: {"status": "status"}');
      if (!('status' in body)) throw badRequest('Status not specified');
      const image = await loadImage(ctx, principal, param(request, 'imageId'));
      const refused = `Not allowed to update members for image ${image.id}.`;
      if (image.visibility !== 'shared') throw forbidden(refused);
      // Answering the invitation is the member's act; the owner may not (admins may).
      if (!isAdmin(principal) && image.owner === principal.projectId) throw forbidden(refused);
      const member = await findMember(principal, image, param(request, 'memberId'));
      if (!MEMBER_STATUSES.includes(body.status as MemberStatus)) throw badRequest(`Incorrect request: Invalid status: ${String(body.status)}`);
      try {
        return memberJson(await backend.updateMember(principal, image.id, member.member, body.status as MemberStatus));
      } catch (err) {
        if (err instanceof VitrineError && err.code === 'FORBIDDEN') throw forbidden(refused);
        throw err;
      }
    },

    DELETE: async (request, reply) => {
      const principal = principalOf(request);
      const image = await loadImage(ctx, principal, param(request, 'imageId'));
      const refused = `Not allowed to delete members for image ${image.id}.`;
      if (image.visibility !== 'shared') throw forbidden(refused);
      if (!isAdmin(principal) && image.owner !== principal.projectId) throw forbidden(refused);
      const member = await findMember(principal, image, param(request, 'memberId'));
      await backend.removeMember(principal, image.id, member.member);
      return reply.code(204).send();
    },
  });
}
