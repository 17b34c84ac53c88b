package api

import "github.com/gofiber/fiber/v2"

// adminRoutes mounts the routes of city administration.
func (s *Server) adminRoutes(app *fiber.App, v1 fiber.Router) {}
