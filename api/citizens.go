package api

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// Bounds of GET /v1/reports/nearby: a street to a neighbourhood.
const (
	nearbyDefaultRadius = 500.0
	nearbyMaxRadius     = 2000.0
	nearbyMaxItems      = 100
)

// nearby lists open reports around a point, nearest first, in their public view
// (GET /v1/reports/nearby?lat=&lon=&radius=): what an app shows before a citizen reports
// the same thing again.
func (s *Server) nearby(c *fiber.Ctx) error {
	ctx := c.UserContext()
	lat, lon, err := pointOf(c)
	if err != nil {
		return err
	}
	radius := nearbyDefaultRadius
	if v := c.Query("radius"); v != "" {
		radius, err = strconv.ParseFloat(v, 64)
		if err != nil || radius < 1 || radius > nearbyMaxRadius {
			return models.Problemf(models.ErrInvalid, "invalid-radius", "radius is metres, from 1 to %.0f", nearbyMaxRadius)
		}
	}
	cs, err := s.db.Nearby(ctx, lat, lon, radius, nearbyMaxItems)
	if err != nil {
		return err
	}
	reports, err := s.toReports(ctx, cs, false, false, false)
	if err != nil {
		return err
	}
	out := NearbyList{Items: []NearbyItem{}}
	for i, r := range reports {
		out.Items = append(out.Items, NearbyItem{Report: r, DistanceM: models.DistanceMetres(lat, lon, cs[i].Lat, cs[i].Lon)})
	}
	return c.JSON(out)
}

// support is a citizen's "me too" (POST /v1/reports/{id}/support): counted once, and the
// supporter hears of the report's public changes from then on.
func (s *Server) support(c *fiber.Ctx) error {
	ctx := c.UserContext()
	cs, added, err := s.db.Support(ctx, c.Params("id"), caller(c).UserID, s.now())
	if err != nil {
		return err
	}
	r, err := s.toReport(ctx, cs, false, false)
	if err != nil {
		return err
	}
	return c.JSON(SupportResult{Report: *r, Counted: added})
}

// markRead marks inbox entries read (POST /v1/me/notifications/read): those listed, or
// every unread one when no ids are given.
func (s *Server) markRead(c *fiber.Ctx) error {
	var req MarkReadRequest
	if err := readJSON(c, &req, 64<<10); err != nil {
		return err
	}
	if len(req.IDs) > 500 {
		return models.Problemf(models.ErrInvalid, "too-many-ids", "mark at most 500 entries at once, or send no ids to mark all")
	}
	n, err := s.db.MarkRead(c.UserContext(), caller(c).UserID, req.IDs, s.now())
	if err != nil {
		return err
	}
	unread, err := s.db.UnreadCount(c.UserContext(), caller(c).UserID)
	if err != nil {
		return err
	}
	return c.JSON(MarkReadResult{Marked: n, Unread: unread})
}
