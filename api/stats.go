package api

import "github.com/gofiber/fiber/v2"

// statsRoutes mounts the routes of supervisors' KPIs, lists and exports.
func (s *Server) statsRoutes(app *fiber.App, v1 fiber.Router) {}
