package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// The administrators' API for their city's Open311 keys, one per client. Keys are kept only
// as digests: a new key is shown once, when it is made, and never listed.

// listOpen311Keys lists the administrator's city's keys (GET /v1/admin/open311-keys).
func (s *Server) listOpen311Keys(c *fiber.Ctx) error {
	ks, err := s.db.ListAPIKeys(c.UserContext(), caller(c).JurisdictionID)
	if err != nil {
		return err
	}
	out := make([]Open311KeyInfo, 0, len(ks))
	for i := range ks {
		out = append(out, toOpen311KeyInfo(&ks[i]))
	}
	return c.JSON(out)
}

// createOpen311Key makes a key for a client (POST /v1/admin/open311-keys).
func (s *Server) createOpen311Key(c *fiber.Ctx) error {
	var req Open311KeyRequest
	if err := readJSON(c, &req, 4<<10); err != nil {
		return err
	}
	k, key, err := s.db.CreateAPIKey(c.UserContext(), caller(c).JurisdictionID, req.Name, s.now())
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(Open311KeyCreated{Open311KeyInfo: toOpen311KeyInfo(k), Key: key})
}

// deleteOpen311Key revokes a key at once (DELETE /v1/admin/open311-keys/{id}).
func (s *Server) deleteOpen311Key(c *fiber.Ctx) error {
	if err := s.db.DeleteAPIKey(c.UserContext(), caller(c).JurisdictionID, c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func toOpen311KeyInfo(k *models.Open311Key) Open311KeyInfo {
	return Open311KeyInfo{ID: k.ID, Name: k.Name, Source: k.Source, CreatedAt: k.CreatedAt.UTC()}
}
